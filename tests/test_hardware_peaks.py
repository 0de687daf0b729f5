"""The matmul peaks ``devicelab info`` prints for real cards, against NVIDIA's published dense figures.

Every card in ``hardware_fakes.REAL_CARDS`` goes through the path a real machine takes: a fake torch and NVML
answer with the card's name, compute capability, SM count and NVML's *maximum* SM clock (not the lower boost
clock NVIDIA's figures assume), then ``collect()``, the terminal and JSON formatters, and the peaks
``--measure`` divides by. Each must be within 2% of NVIDIA's figure.

    python tests/test_hardware_peaks.py    # prints the table of peaks in docs/info.md
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from devicelab.hardware import collect, gpu_tables
from devicelab.hardware.measure import targets
from devicelab.hardware.report import HardwareReport, to_dict
from devicelab.report.hardware import format_terminal
from devicelab.report.tables import format_markdown_table
from hardware_fakes import H100, REAL_CARDS, FakeCard, FakeNvml, FakeProps, TorchBuild, probes_for

DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8")
CASES = [(i, dtype) for i, real in enumerate(REAL_CARDS) for dtype in DTYPES if dtype in real.published]
DOCS = Path(__file__).parents[1] / "docs" / "info.md"


def machine_with(cards: list[FakeCard]) -> HardwareReport:
    return collect(probes_for(TorchBuild(devices=[c.props for c in cards]), FakeNvml(cards)))


@pytest.fixture(scope="module")
def machine():
    """One machine holding every real card: its report, the terminal text and the JSON document."""
    report = machine_with([real.card for real in REAL_CARDS])
    return report, format_terminal(report), to_dict(report)


def printed_peak(text: str, device: str, dtype: str) -> tuple[float, str] | None:
    """The value and basis of ``peak matmul <dtype>`` in the terminal report's section for ``device``."""
    block = next(b for b in text.split("\n\n") if b.startswith(f"GPU {device}\n"))
    match = re.search(rf"peak matmul {dtype}:\s+([0-9.]+) TFLOP/s \((.*)\)$", block, re.MULTILINE)
    return (float(match[1]), match[2]) if match else None


@pytest.mark.parametrize(
    ("index", "dtype"), CASES, ids=[f"{REAL_CARDS[i].label}-{d}".replace(" ", "_") for i, d in CASES]
)
def test_printed_json_and_measured_peak_is_nvidias_published_figure(machine, index, dtype):
    report, text, document = machine
    real = REAL_CARDS[index]
    published = real.published[dtype]
    gpu = report.gpus[index]
    assert gpu.name == real.card.props.name and gpu.sm_clock_max_mhz == real.card.sm_clock_max
    printed = printed_peak(text, gpu.device, dtype)
    assert printed is not None, f"no {dtype} peak printed for {real.label}"
    assert printed[0] == pytest.approx(published, rel=0.02), (real.label, real.source, printed)
    assert "published" in printed[1], printed[1]  # the basis says where the figure comes from
    json_peaks = {p["what"]: p["value"] for p in document["gpus"][index]["peaks"]}
    assert json_peaks[f"matmul_{dtype}"] == pytest.approx(published, rel=0.02), real.label
    (target,) = [t for t in targets(report) if str(t.device) == gpu.device]
    assert target.peaks[f"matmul_{dtype}"][0] == pytest.approx(published, rel=0.02), real.label


def _unknown(name: str, cc: tuple[int, int], sms: int, mhz: int) -> FakeCard:
    props = FakeProps(name, *cc, 48 << 30, sms, uuid="6c2f0b3e-8d1a-4a55-9f00-0000000000aa")
    return dataclasses.replace(H100, props=props, sm_clock_max=mhz)


# Cards not in devicelab's product table, fed the boost clock their datasheet states, so the clock formula must
# give NVIDIA's figure: this checks the per-SM rates and the GeForce half rate (Ada whitepaper, Appendix A).
UNKNOWN = [
    ("NVIDIA GeForce RTX 4080", (8, 9), 76, 2505, {"fp32": 48.7, "tf32": 48.7, "bf16": 97.5, "fp8": 194.9}),
    ("NVIDIA RTX 6000 Ada Generation", (8, 9), 142, 2505, {"fp32": 91.1, "tf32": 182.1, "bf16": 364.2}),
]


@pytest.mark.parametrize(("name", "cc", "sms", "mhz", "published"), UNKNOWN, ids=["RTX_4080", "RTX_6000_Ada"])
def test_unknown_card_gets_the_clock_formula_at_its_market_rate(name, cc, sms, mhz, published):
    (gpu,) = machine_with([_unknown(name, cc, sms, mhz)]).gpus
    peaks = {p.what: p for p in gpu.peaks}
    for dtype, figure in published.items():
        peak = peaks[f"matmul_{dtype}"]
        assert peak.value == pytest.approx(figure, rel=0.01), (name, dtype)
        assert f"{sms} SMs x {mhz} MHz" in peak.basis
        assert ("GeForce: half rate" in peak.basis) == ("GeForce" in name and dtype != "fp32"), peak.basis
        assert ("upper bound" in peak.basis) == (dtype != "fp32" or "GeForce" in name), peak.basis


def test_a_mig_slice_is_not_the_whole_card():
    """A MIG slice keeps its own SM count, so the whole H100's published figure must not be used for it."""
    props = dataclasses.replace(
        H100.props, name="NVIDIA H100 80GB HBM3 MIG 3g.40gb", multi_processor_count=60
    )
    (gpu,) = machine_with([dataclasses.replace(H100, props=props)]).gpus
    bf16 = next(p for p in gpu.peaks if p.what == "matmul_bf16")
    assert bf16.value == pytest.approx(60 * 1980e6 * 4096 / 1e12) and "60 SMs" in bf16.basis


def test_geforce_half_rate_covers_every_capability_with_a_geforce_tensor_core_card():
    for cc in ((7, 5), (8, 6), (8, 9), (12, 0)):
        full = gpu_tables.matmul_flop_per_clock(*cc, geforce=False)
        half = gpu_tables.matmul_flop_per_clock(*cc, geforce=True)
        assert half["fp32"] == full["fp32"] and half["fp16"] * 2 == full["fp16"], cc
    assert gpu_tables.matmul_flop_per_clock(9, 0, geforce=True) == gpu_tables.sm_flop_per_clock(9, 0)


@pytest.mark.gpu
def test_a_real_card_of_the_product_table_is_recognised_by_its_name_and_sm_count():
    """On a GPU machine: torch's name and SM count for a listed product must select its published figures."""
    import torch

    from devicelab.hardware import gpu_published

    props = torch.cuda.get_device_properties(0)
    if props.name not in gpu_published.PRODUCTS:
        pytest.skip(f"{props.name} is not in devicelab's product table")
    gpu = next(g for g in collect().gpus if g.backend == "cuda")
    matmul = [p for p in gpu.peaks if p.what.startswith("matmul_")]
    assert matmul and all("published" in p.basis for p in matmul), (gpu.sm_count, gpu.sm_clock_max_mhz)


def peak_table(report: HardwareReport) -> str:
    """The table in docs/info.md: each card's NVML inputs, devicelab's peak and NVIDIA's figure per dtype, and
    the bf16 figure the clock formula would give the same card under a name devicelab does not know."""
    rows = []
    for real, gpu in zip(REAL_CARDS, report.gpus, strict=True):
        peaks = {p.what: p.value for p in gpu.peaks}
        cells = [
            f"{peaks[f'matmul_{d}']:.4g} / {real.published[d]:.4g}" if d in real.published else "-"
            for d in DTYPES
        ]
        major, minor = map(int, gpu.compute_capability.split("."))
        rate = gpu_tables.matmul_flop_per_clock(major, minor, geforce="GeForce" in gpu.name)["bf16"]
        formula = gpu.sm_count * gpu.sm_clock_max_mhz * 1e6 * rate / 1e12
        row = [real.label, f"`{gpu.name}`", gpu.sm_count, gpu.sm_clock_max_mhz, *cells, f"{formula:.4g}"]
        rows.append([*row, real.source])
    headers = ["card", "name (torch, NVML)", "SMs", "NVML max SM MHz", *DTYPES, "bf16 by clock formula"]
    return format_markdown_table(rows, [*headers, "NVIDIA's figure from"])


def test_docs_hold_the_table_of_peaks_the_code_gives(machine):
    table = peak_table(machine[0])
    assert table in DOCS.read_text(), "docs/info.md is out of date: run python tests/test_hardware_peaks.py"


if __name__ == "__main__":
    print(peak_table(machine_with([real.card for real in REAL_CARDS])))
