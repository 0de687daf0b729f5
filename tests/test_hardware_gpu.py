"""GPU collection and the doctor, with fake torch builds and a fake NVML for hardware this machine lacks.

The CPU-only case uses the real torch installed here (a CPU build).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from devicelab.hardware import collect, default_probes
from hardware_fakes import H100, MI300X, RTX_4090, RTX_5090, FakeNvml, TorchBuild, probes_for


def test_no_gpu_real_cpu_only_torch():
    if torch.version.cuda or torch.cuda.is_available():
        pytest.skip("this torch is not a CPU-only build")
    report = collect()
    assert report.gpus == ()
    assert report.doctor.accelerator is None
    problem = report.doctor.findings[0].problem
    assert "CPU-only build" in problem and torch.__version__ in problem
    assert "download.pytorch.org/whl/cu" in report.doctor.findings[0].fix


def test_cpu_only_build_with_an_nvidia_gpu_present_names_it():
    build = TorchBuild(version="2.11.0+cpu", cuda=None, devices=[])
    report = collect(probes_for(build, FakeNvml([H100])))
    assert report.gpus == ()
    assert (
        "CPU-only build, but an NVIDIA GPU is present (NVIDIA H100 80GB HBM3)"
        in report.doctor.findings[0].problem
    )
    assert report.software.nvidia_driver == "580.159.04"
    assert report.software.driver_cuda == "13.0"


def test_one_h100():
    report = collect(probes_for(TorchBuild(devices=[H100.props]), FakeNvml([H100])))
    (gpu,) = report.gpus
    assert (gpu.device, gpu.name, gpu.backend) == ("cuda:0", "NVIDIA H100 80GB HBM3", "cuda")
    assert gpu.compute_capability == "9.0"
    assert gpu.architecture == "Hopper"
    assert gpu.sm_count == 132
    assert gpu.total_memory_bytes == H100.props.total_memory and gpu.free_memory_bytes == H100.free
    assert (gpu.sm_clock_mhz, gpu.sm_clock_max_mhz, gpu.memory_clock_max_mhz) == (345, 1980, 2619)
    assert gpu.power_limit_w == 700
    assert (gpu.pcie_generation, gpu.pcie_generation_max, gpu.pcie_width, gpu.pcie_width_max) == (
        5,
        5,
        16,
        16,
    )
    assert gpu.in_torch_arch_list is True
    assert gpu.native_dtypes == ("tf32", "bf16", "fp16", "fp8")
    peaks = {p.what: p.value for p in gpu.peaks}
    assert peaks["matmul_bf16"] == pytest.approx(989.4, rel=0.01)  # H100 SXM datasheet: 1979 with sparsity
    assert peaks["memory_bandwidth"] == pytest.approx(3352, rel=0.01)  # H100 SXM datasheet: 3.35 TB/s
    assert gpu.missing == {}
    assert report.doctor.accelerator == "cuda:0" and report.doctor.findings == ()
    assert report.software.cudnn == "9.10.2"


def test_two_mixed_gpus_each_read_from_its_own_nvml_device():
    # NVML lists the cards in the other order: matching is by UUID, not by index.
    report = collect(probes_for(TorchBuild(devices=[RTX_4090.props, H100.props]), FakeNvml([H100, RTX_4090])))
    ada, hopper = report.gpus
    assert (ada.device, ada.architecture, ada.sm_count, ada.compute_capability) == (
        "cuda:0",
        "Ada Lovelace",
        128,
        "8.9",
    )
    assert (hopper.device, hopper.architecture, hopper.sm_count) == ("cuda:1", "Hopper", 132)
    assert ada.pcie_generation == 1 and ada.pcie_generation_max == 4
    assert ada.free_memory_bytes == RTX_4090.free and hopper.free_memory_bytes == H100.free
    assert {p.what: p.value for p in ada.peaks}["memory_bandwidth"] == pytest.approx(
        1008, rel=0.01
    )  # 4090: 1008 GB/s


def test_card_not_in_arch_list_is_diagnosed():
    build = TorchBuild(version="2.4.0+cu121", devices=[RTX_5090.props], arch_list=("sm_80", "sm_86", "sm_90"))
    report = collect(probes_for(build, FakeNvml([RTX_5090])))
    (gpu,) = report.gpus
    assert gpu.architecture == "Blackwell" and gpu.in_torch_arch_list is False
    assert report.doctor.accelerator is None
    (finding,) = report.doctor.findings
    assert (
        "NVIDIA GeForce RTX 5090 (compute capability 12.0) is not in this torch's arch list"
        in finding.problem
    )


def test_rocm_gfx942():
    build = TorchBuild(
        version="2.11.0+rocm6.4", cuda=None, hip="6.4", devices=[MI300X], arch_list=("gfx90a", "gfx942")
    )
    report = collect(probes_for(build, nvml=None))
    (gpu,) = report.gpus
    assert (gpu.backend, gpu.device, gpu.compute_capability) == ("rocm", "cuda:0", "gfx942")
    assert gpu.architecture == "CDNA 3"
    assert gpu.sm_count == 304
    assert gpu.in_torch_arch_list is True
    assert "fp8" in gpu.native_dtypes and "bf16" in gpu.native_dtypes
    assert gpu.free_memory_bytes == build.free  # from torch.cuda.mem_get_info: ROCm has no NVML
    assert report.software.torch_hip == "6.4" and report.software.torch_cuda is None
    assert report.doctor.accelerator == "cuda:0" and report.doctor.findings == ()


def test_mps():
    build = TorchBuild(version="2.11.0", cuda=None, mps_built=True, mps_available=True)
    report = collect(probes_for(build, system="Darwin"))
    (gpu,) = report.gpus
    assert (gpu.backend, gpu.device) == ("mps", "mps")
    assert gpu.total_memory_bytes == 21 << 30
    assert report.doctor.accelerator == "mps" and report.doctor.findings == ()


def test_mps_built_but_unavailable():
    build = TorchBuild(version="2.11.0", cuda=None, mps_built=True, mps_available=False)
    report = collect(probes_for(build, system="Darwin"))
    assert report.gpus == ()
    (finding,) = report.doctor.findings
    assert "MPS but it is unavailable" in finding.problem and "macOS 12.3" in finding.fix


def test_nvml_absent_still_reports_what_torch_knows():
    build = TorchBuild(devices=[H100.props], free=70 << 30)
    report = collect(probes_for(build, nvml=None, nvidia_hint=True))
    (gpu,) = report.gpus
    assert (gpu.name, gpu.architecture, gpu.sm_count) == ("NVIDIA H100 80GB HBM3", "Hopper", 132)
    assert gpu.free_memory_bytes == 70 << 30  # torch.cuda.mem_get_info instead of NVML
    assert gpu.power_limit_w is None and "pynvml" in gpu.missing["power_limit_w"]
    # a known product still gets NVIDIA's published matmul figures; the memory peak needs NVML's clock
    assert {p.what for p in gpu.peaks} == {f"matmul_{d}" for d in ("fp32", "tf32", "bf16", "fp16", "fp8")}
    assert gpu.missing["memory_clock_max_mhz"]
    assert report.software.nvidia_driver is None


def test_nvml_raising_on_every_call_leaves_fields_none_with_the_reason():
    report = collect(probes_for(TorchBuild(devices=[H100.props]), FakeNvml([H100], fail=True)))
    (gpu,) = report.gpus
    assert gpu.sm_count == 132 and gpu.architecture == "Hopper"
    for name in ("sm_clock_mhz", "sm_clock_max_mhz", "power_limit_w", "pcie_generation", "pcie_width_max"):
        assert getattr(gpu, name) is None
        assert "Not Supported" in gpu.missing[name], name


def test_cuda_build_without_driver():
    report = collect(probes_for(TorchBuild(devices=[]), nvml=None, nvidia_hint=False))
    (finding,) = report.doctor.findings
    assert "built for CUDA 13.0 but no NVIDIA driver or GPU was found" in finding.problem
    assert "install the NVIDIA driver" in finding.fix


def test_driver_too_old_for_this_torch():
    report = collect(probes_for(TorchBuild(devices=[]), FakeNvml([H100], driver="535.104", cuda=12020)))
    (finding,) = report.doctor.findings
    assert "supports CUDA up to 12.2" in finding.problem and "built for CUDA 13.0" in finding.problem


def test_driver_whose_cuda_version_nvml_cannot_read_is_not_called_too_old():
    report = collect(probes_for(TorchBuild(devices=[]), FakeNvml([H100], cuda=None)))
    (finding,) = report.doctor.findings
    assert "None" not in finding.problem
    assert "NVML sees NVIDIA H100 80GB HBM3 but torch cannot initialise CUDA" in finding.problem


def test_mig_slice_is_found_in_nvml_by_its_mig_uuid():
    slice_props = dataclasses.replace(
        H100.props, name="NVIDIA H100 80GB HBM3 MIG 3g.40gb", multi_processor_count=60
    )
    mig = dataclasses.replace(H100, props=slice_props, free=39 << 30, mig=True)
    probes = probes_for(
        TorchBuild(devices=[slice_props]), FakeNvml([mig]), environ={"CUDA_VISIBLE_DEVICES": "MIG-x"}
    )
    (gpu,) = collect(probes).gpus
    assert gpu.free_memory_bytes == 39 << 30 and gpu.power_limit_w == 700
    assert "nvml" not in gpu.missing


def test_xpu_build_without_an_intel_gpu():
    build = TorchBuild(version="2.11.0+xpu", cuda=None, xpu_built=True)
    report = collect(probes_for(build, nvidia_hint=False))
    assert report.gpus == () and report.doctor.accelerator is None
    (finding,) = report.doctor.findings  # not the generic "torch finds no accelerator"
    assert "built for Intel XPU but finds no Intel GPU" in finding.problem and "driver" in finding.fix


def test_cuda_visible_devices_empty_hides_gpus():
    probes = probes_for(TorchBuild(devices=[]), FakeNvml([H100]), environ={"CUDA_VISIBLE_DEVICES": ""})
    (finding,) = collect(probes).doctor.findings
    assert "CUDA_VISIBLE_DEVICES=''" in finding.problem


@pytest.mark.gpu
def test_real_cuda_collection():
    report = collect()
    cuda = [g for g in report.gpus if g.backend == "cuda"]
    assert cuda, report.doctor
    props = torch.cuda.get_device_properties(0)
    gpu = cuda[0]
    assert gpu.name == props.name and gpu.sm_count == props.multi_processor_count
    assert gpu.compute_capability == f"{props.major}.{props.minor}" and gpu.architecture is not None
    assert gpu.in_torch_arch_list is True
    assert report.software.torch_cuda == torch.version.cuda
    assert report.doctor.accelerator == "cuda:0"
    # NVML is a dependency and present on the GPU machine: its fields are read
    assert gpu.sm_clock_max_mhz and gpu.memory_clock_max_mhz and report.software.nvidia_driver
    assert {"matmul_bf16", "memory_bandwidth"} <= {p.what for p in gpu.peaks}


def test_default_probes_are_the_real_torch():
    probes = default_probes()
    assert probes.torch is torch
    assert dataclasses.is_dataclass(probes)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_missing_device_error_gives_the_doctors_reason_in_its_words():
    """`--device cuda` on this machine and `devicelab info` explain the missing GPU with one text."""
    from devicelab.devices import why_unavailable
    from devicelab.hardware import collect

    finding = collect().doctor.findings[0]
    assert why_unavailable("cuda") == f"{finding.problem}; {finding.fix}"
