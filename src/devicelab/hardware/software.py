"""Software: Python, OS, torch and the CUDA/cuDNN/ROCm versions *as loaded by torch*, and the driver."""

from __future__ import annotations

import platform
import sys

from devicelab import __version__
from devicelab.hardware.probes import Probes
from devicelab.hardware.report import SoftwareInfo


def _cudnn_version(torch) -> str | None:
    version = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    if not version:
        return None
    major, rest = divmod(int(version), 10000) if version >= 10000 else divmod(int(version), 1000)
    minor, patch = divmod(rest, 100)
    return f"{major}.{minor}.{patch}"


def _numpy_version() -> str | None:
    numpy = sys.modules.get(
        "numpy"
    )  # torch imports numpy when it is installed; never import it just for this
    return getattr(numpy, "__version__", None)


def collect_software(probes: Probes, driver: str | None, driver_cuda: str | None) -> SoftwareInfo:
    torch = probes.torch
    cpu_backend = getattr(torch.backends, "cpu", None)
    missing = {}
    if driver is None:
        missing["nvidia_driver"] = "no NVIDIA driver found through NVML"
    return SoftwareInfo(
        python=platform.python_version(),
        os=f"{probes.system} {platform.release()} ({probes.machine})",
        devicelab=__version__,
        torch=torch.__version__,
        torch_cuda=torch.version.cuda,
        torch_hip=getattr(torch.version, "hip", None),
        cudnn=_cudnn_version(torch),
        nvidia_driver=driver,
        driver_cuda=driver_cuda,
        torch_cpu_capability=cpu_backend.get_cpu_capability() if cpu_backend else None,
        mkldnn=bool(torch.backends.mkldnn.is_available()),
        mps_built=bool(torch.backends.mps.is_built()),
        xpu_built=getattr(torch._C, "_has_xpu", None),
        numpy=_numpy_version(),
        missing=missing,
    )
