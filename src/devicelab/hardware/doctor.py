"""Doctor: which accelerator devicelab would use, and when none, why not and how to fix it."""

from __future__ import annotations

from devicelab.hardware.gpu import GpuScan
from devicelab.hardware.probes import Probes
from devicelab.hardware.report import Doctor, Finding

PYTORCH_INSTALL = "https://pytorch.org/get-started/locally/"


def _version_tuple(text: str | None) -> tuple[int, ...]:
    return tuple(int(p) for p in (text or "").split(".") if p.isdigit())


def cpu_only_build(probes: Probes, scan: GpuScan) -> list[Finding]:
    torch = probes.torch
    if torch.version.cuda or getattr(torch.version, "hip", None) or torch.backends.mps.is_built():
        return []
    if getattr(torch._C, "_has_xpu", False):
        return []
    seen = ", ".join(scan.nvml.device_names)
    if seen or probes.nvidia_hint():
        problem = f"this torch {torch.__version__} is a CPU-only build, but an NVIDIA GPU is present ({seen or 'driver loaded'})"
    else:
        problem = f"this torch {torch.__version__} is a CPU-only build and no NVIDIA driver was found"
    if probes.system == "Darwin":
        fix = "install the standard macOS wheel (pip install torch), which has MPS on Apple silicon"
    else:
        fix = (
            "with an NVIDIA GPU and driver, install a CUDA build: pip install torch --index-url "
            f"https://download.pytorch.org/whl/cu128 (pick the CUDA version at {PYTORCH_INSTALL})"
        )
    return [Finding(problem, fix)]


def cuda_unusable(probes: Probes, scan: GpuScan) -> list[Finding]:
    torch = probes.torch
    if not torch.version.cuda or torch.cuda.is_available():
        return []
    visible = probes.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return [
            Finding(
                f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU from torch",
                "unset CUDA_VISIBLE_DEVICES or set it to the GPU indices to use (e.g. 0)",
            )
        ]
    state = scan.nvml
    if not state.device_names:
        return [
            Finding(
                f"torch {torch.__version__} was built for CUDA {torch.version.cuda} but no NVIDIA driver or GPU "
                f"was found ({state.error or 'NVML lists no GPU'})",
                "install the NVIDIA driver (nvidia-smi must list the GPU); in a container, start it with --gpus all",
            )
        ]
    if state.driver_cuda and _version_tuple(state.driver_cuda)[:2] < _version_tuple(torch.version.cuda)[:2]:
        return [
            Finding(
                f"the NVIDIA driver {state.driver} supports CUDA up to {state.driver_cuda}, but this torch was "
                f"built for CUDA {torch.version.cuda}",
                f"upgrade the NVIDIA driver, or install a torch built for CUDA {state.driver_cuda} or older "
                f"({PYTORCH_INSTALL})",
            )
        ]
    return [
        Finding(
            f"NVML sees {', '.join(state.device_names)} but torch cannot initialise CUDA",
            "check nvidia-smi, that the nvidia-uvm kernel module is loaded, and the device permissions",
        )
    ]


def rocm_unusable(probes: Probes, scan: GpuScan) -> list[Finding]:
    torch = probes.torch
    if not getattr(torch.version, "hip", None) or torch.cuda.is_available():
        return []
    return [
        Finding(
            f"torch {torch.__version__} was built for ROCm {torch.version.hip} but finds no AMD GPU",
            "check rocm-smi, and that this user may open /dev/kfd and /dev/dri (groups video and render)",
        )
    ]


def mps_unusable(probes: Probes, scan: GpuScan) -> list[Finding]:
    torch = probes.torch
    if probes.system != "Darwin" or torch.backends.mps.is_available():
        return []
    if not torch.backends.mps.is_built():
        return []  # cpu_only_build says it
    return [
        Finding(
            f"torch has MPS but it is unavailable (this Python runs as {probes.machine})",
            "MPS needs macOS 12.3 or later on Apple silicon and an arm64 Python (not one under Rosetta)",
        )
    ]


def xpu_unusable(probes: Probes, scan: GpuScan) -> list[Finding]:
    torch = probes.torch
    xpu = getattr(torch, "xpu", None)
    if not getattr(torch._C, "_has_xpu", False) or xpu is None or xpu.is_available():
        return []
    return [
        Finding(
            f"torch {torch.__version__} was built for Intel XPU but finds no Intel GPU",
            "install Intel's GPU driver (the Level Zero runtime); check that this user may open /dev/dri "
            "(group render)",
        )
    ]


def not_in_arch_list(probes: Probes, scan: GpuScan) -> list[Finding]:
    arch_list = " ".join(probes.torch.cuda.get_arch_list()) if scan.gpus else ""
    return [
        Finding(
            f"{gpu.device} {gpu.name} (compute capability {gpu.compute_capability}) is not in this torch's "
            f"arch list ({arch_list}): its kernels will not run",
            f"install a torch build that ships kernels for it (a newer CUDA or ROCm wheel, {PYTORCH_INSTALL})",
        )
        for gpu in scan.gpus
        if gpu.in_torch_arch_list is False
    ]


CHECKS = (cpu_only_build, cuda_unusable, rocm_unusable, mps_unusable, xpu_unusable, not_in_arch_list)


def diagnose(probes: Probes, scan: GpuScan) -> Doctor:
    usable = [gpu for gpu in scan.gpus if gpu.in_torch_arch_list is not False]
    findings = tuple(finding for check in CHECKS for finding in check(probes, scan))
    return Doctor(accelerator=usable[0].device if usable else None, findings=findings)


# The checks that can explain why one device type is missing (``devicelab train --device cuda`` and the
# like), so a command's error and ``devicelab info`` give the same reason in the same words.
CHECKS_BY_DEVICE = {
    "cuda": (cpu_only_build, cuda_unusable, rocm_unusable, not_in_arch_list),
    "mps": (mps_unusable,),  # a build without MPS at all: devices.why_unavailable's general reason says it
    "xpu": (xpu_unusable,),
}


def explain_missing(device_type: str, probes: Probes | None = None) -> Finding | None:
    """The doctor's first finding about ``device_type`` on this machine, or None when it has none."""
    from devicelab.hardware.gpu import collect_gpus
    from devicelab.hardware.probes import default_probes

    probes = probes or default_probes()
    checks = CHECKS_BY_DEVICE.get(device_type, ())
    if not checks:
        return None
    scan = collect_gpus(probes)
    return next((finding for check in checks for finding in check(probes, scan)), None)
