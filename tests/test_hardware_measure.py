"""--measure on the real CPU here (and on CUDA when present). No timed asserts: the figures' structure, units
and arithmetic are checked, and the GPU figures against the card's own theoretical peak (a figure above the peak
means the timing is wrong, e.g. a missing synchronize)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from devicelab.hardware import collect
from devicelab.hardware.measure import (
    Plan,
    cpu_fp32_peak,
    cpu_matmul_dtypes,
    matmul_time,
    measure_device,
    pinned_options,
    plan_for,
    sync_round_trip,
    targets,
)
from devicelab.timing import Measurement


@pytest.fixture(scope="module")
def report():
    return collect()


def test_sync_round_trip_on_cpu():
    m = sync_round_trip("cpu", repeats=5)
    assert isinstance(m, Measurement) and m.label == "sync_round_trip"
    assert len(m.times) == 5 and all(t > 0 for t in m.times)


def test_matmul_restores_float32_precision():
    before = torch.get_float32_matmul_precision()
    m = matmul_time(torch.device("cpu"), "tf32", Plan(64, 0, 0, 3, 0.005))
    assert len(m.times) == 3
    assert torch.get_float32_matmul_precision() == before


def test_cpu_figures(report):
    (cpu,) = [t for t in targets(report) if t.device.type == "cpu"]
    steps = []
    figures = measure_device(cpu, quick=True, on_step=steps.append)
    by_what = {f.what: f for f in figures}
    assert {
        "matmul_fp32",
        "memory_bandwidth",
        "launch_back_to_back",
        "launch_and_sync",
        "sync_round_trip",
    } <= set(by_what)
    assert not any(w.startswith(("h2d", "d2h")) for w in by_what)  # no host<->device copies on the CPU
    for f in figures:
        assert f.device == "cpu" and f.repeats == 5
        assert 0 < f.low <= f.median <= f.high, f
    assert by_what["matmul_fp32"].unit == "TFLOP/s" and by_what["matmul_fp32"].size == "n=512"
    assert by_what["memory_bandwidth"].unit == "GB/s"
    assert by_what["sync_round_trip"].unit == "us"
    assert steps[0] == "cpu: matmul_fp32"


def test_launch_and_sync_waits_for_every_launch_and_back_to_back_does_not(monkeypatch):
    """The latency figure pays one synchronize per kernel; the back-to-back figure only one per repeat."""
    from devicelab.hardware import measure

    syncs = []
    monkeypatch.setattr(measure, "sync_fn", lambda device: lambda: syncs.append(device))
    monkeypatch.setattr(measure, "calibrate_number", lambda fn, sync, target_s: 50)
    plan = Plan(0, 0, 0, 3, 0.001)
    m = measure.launch_back_to_back_time(torch.device("cpu"), plan)
    assert m.label == "launch_back_to_back" and len(syncs) < 10  # around repeats, not per launch
    syncs.clear()
    m = measure.launch_and_sync_time(torch.device("cpu"), plan)
    assert m.label == "launch_and_sync" and len(syncs) >= 3 * 50  # at least one per timed launch


def test_cpu_native_dtypes_from_flags(report):
    cpu = dataclasses.replace(report.cpu, flags=frozenset({"avx2", "fma"}))
    assert cpu_matmul_dtypes(cpu) == ("fp32",)
    cpu = dataclasses.replace(report.cpu, flags=frozenset({"avx512f", "amx_bf16", "avx512_bf16"}))
    assert cpu_matmul_dtypes(cpu) == ("fp32", "bf16")


def test_cpu_peak_is_an_upper_bound_from_clock_and_vector_width(report):
    cpu = dataclasses.replace(
        report.cpu, flags=frozenset({"avx512f", "avx2"}), max_mhz=3000.0, physical_cores=4
    )
    value, basis = cpu_fp32_peak(cpu, threads=8)
    assert value == pytest.approx(4 * 3000e6 * 64 / 1e12)  # 4 cores (not 8 threads) x 2 pipes x 16 lanes x 2
    assert "upper bound" in basis
    assert cpu_fp32_peak(dataclasses.replace(cpu, max_mhz=None), threads=8) is None


@pytest.mark.parametrize("free_gib", [0.5, 2, 6, 80])
@pytest.mark.parametrize("quick", [False, True])
def test_gpu_problem_sizes_fit_in_a_quarter_of_the_free_memory(free_gib, quick):
    free = int(free_gib * (1 << 30))
    plan = plan_for(torch.device("cuda:0"), free, quick)
    largest_step = max(3 * plan.matmul_n**2 * 4, 2 * plan.copy_bytes, plan.transfer_bytes)  # fp32 a, b, out
    assert largest_step <= free // 4
    if free_gib == 80:  # a big idle card gets the big problems
        assert (plan.matmul_n, plan.copy_bytes) == ((4096, 128 << 20) if quick else (8192, 512 << 20))


def test_gpu_plan_uses_the_free_memory_of_a_busy_card():
    from hardware_fakes import H100, FakeNvml, TorchBuild, probes_for

    busy = dataclasses.replace(H100, free=2 << 30)  # an 80 GiB card with 2 GiB left
    report = collect(probes_for(TorchBuild(devices=[H100.props]), FakeNvml([busy])))
    (gpu,) = [t for t in targets(report) if t.device.type == "cuda"]
    plan = plan_for(gpu.device, gpu.free_memory, quick=False)
    assert 2 * plan.copy_bytes <= (2 << 30) // 4 and 3 * plan.matmul_n**2 * 4 <= (2 << 30) // 4


def test_pinned_transfers_only_where_torch_can_pin():
    assert pinned_options(torch.device("cuda:0")) == (False, True)  # CUDA and ROCm
    assert pinned_options(torch.device("mps")) == (False,)  # pin_memory() raises without CUDA


@pytest.mark.gpu
def test_cuda_measure_reports_bf16_and_bandwidth_below_peak():
    report = collect(measure=True, quick=True)
    figures = {(f.device, f.what): f for f in report.measurements}
    for what in (
        "matmul_fp32",
        "matmul_bf16",
        "memory_bandwidth",
        "h2d_pinned",
        "d2h_pinned",
        "sync_round_trip",
    ):
        assert ("cuda:0", what) in figures, what
    for what in ("matmul_fp32", "matmul_bf16", "memory_bandwidth"):
        f = figures[("cuda:0", what)]
        assert f.peak is not None and 0 < f.median <= 1.1 * f.peak, f


@pytest.mark.gpu
def test_cuda_sync_round_trip():
    m = sync_round_trip("cuda:0")
    assert len(m.times) == 9 and all(t > 0 for t in m.times)
