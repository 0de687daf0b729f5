"""The lookup tables against public references: real CPUs' CPUID family/model, NVIDIA's compute capabilities,
and the per-SM rates behind the peak figures NVIDIA publishes for real cards."""

from __future__ import annotations

import pytest

from devicelab.hardware import cpu_tables, gpu_tables
from devicelab.hardware.gpu import cuda_peaks

# (vendor, family, model, stepping, expected) for real processors (CPUID as Linux reports it).
REAL_CPUS = [
    ("GenuineIntel", 6, 0x3F, 2, "Haswell"),  # Xeon E5-2680 v3
    ("GenuineIntel", 6, 0x4F, 1, "Broadwell"),  # Xeon E5-2690 v4
    ("GenuineIntel", 6, 0x55, 4, "Skylake-SP"),  # Xeon Platinum 8180
    ("GenuineIntel", 6, 0x55, 7, "Cascade Lake"),  # Xeon Gold 6248
    ("GenuineIntel", 6, 0x55, 11, "Cooper Lake"),  # Xeon Platinum 8380H
    ("GenuineIntel", 6, 0x9E, 10, "Kaby Lake / Coffee Lake"),  # Core i7-8700K
    ("GenuineIntel", 6, 0x6A, 6, "Ice Lake-SP"),  # Xeon Platinum 8380
    ("GenuineIntel", 6, 0x9A, 4, "Alder Lake"),  # Core i7-1255U (the lesson's laptop)
    ("GenuineIntel", 6, 0x97, 2, "Alder Lake"),  # Core i7-12700K
    ("GenuineIntel", 6, 0xB7, 1, "Raptor Lake"),  # Core i9-13900K
    ("GenuineIntel", 6, 0x8F, 8, "Sapphire Rapids"),  # Xeon Platinum 8480+
    ("GenuineIntel", 6, 0xCF, 2, "Emerald Rapids"),  # Xeon Platinum 8592+
    ("GenuineIntel", 6, 0xAD, 1, "Granite Rapids"),  # Xeon 6980P
    ("GenuineIntel", 6, 0xC6, 2, "Arrow Lake"),  # Core Ultra 9 285K
    ("AuthenticAMD", 0x15, 0x02, 0, "Piledriver"),  # FX-8350
    ("AuthenticAMD", 0x17, 0x01, 2, "Zen"),  # EPYC 7601
    ("AuthenticAMD", 0x17, 0x08, 2, "Zen+"),  # Ryzen 7 2700X
    ("AuthenticAMD", 0x17, 0x31, 0, "Zen 2"),  # EPYC 7742
    ("AuthenticAMD", 0x17, 0x71, 0, "Zen 2"),  # Ryzen 9 3900X
    ("AuthenticAMD", 0x19, 0x01, 1, "Zen 3"),  # EPYC 7763
    ("AuthenticAMD", 0x19, 0x21, 0, "Zen 3"),  # Ryzen 9 5950X
    ("AuthenticAMD", 0x19, 0x44, 1, "Zen 3+"),  # Ryzen 7 6800H
    ("AuthenticAMD", 0x19, 0x11, 1, "Zen 4"),  # EPYC 9654
    ("AuthenticAMD", 0x19, 0x61, 2, "Zen 4"),  # Ryzen 9 7950X
    ("AuthenticAMD", 0x19, 0xA0, 2, "Zen 4c"),  # EPYC 9754
    ("AuthenticAMD", 0x1A, 0x02, 1, "Zen 5"),  # EPYC 9755
    ("AuthenticAMD", 0x1A, 0x44, 0, "Zen 5"),  # Ryzen 9 9950X
    ("AuthenticAMD", 0x17, 0x60, 1, "Zen 2"),  # Ryzen 7 4800U (Renoir)
    ("AuthenticAMD", 0x17, 0x90, 2, "Zen 2"),  # Steam Deck APU (Van Gogh)
    ("AuthenticAMD", 0x19, 0x50, 0, "Zen 3"),  # Ryzen 7 5800U (Cezanne)
    ("AuthenticAMD", 0x19, 0x75, 2, "Zen 4"),  # Ryzen 7 8840U (Hawk Point)
    ("AuthenticAMD", 0x1A, 0x24, 0, "Zen 5"),  # Ryzen AI 9 HX 370 (Strix Point)
]

# Linux arch/x86/kernel/cpu/amd.c, bsp_init_amd(): the model ranges that get X86_FEATURE_ZEN1 .. ZEN6.
AMD_C_ZEN_RANGES = {
    (0x17, "Zen"): ((0x00, 0x2F), (0x50, 0x5F)),
    (0x17, "Zen 2"): ((0x30, 0x4F), (0x60, 0x7F), (0x90, 0x91), (0xA0, 0xAF)),
    (0x19, "Zen 3"): ((0x00, 0x0F), (0x20, 0x5F)),
    (0x19, "Zen 4"): ((0x10, 0x1F), (0x60, 0xAF)),
    (0x1A, "Zen 5"): ((0x00, 0x2F), (0x40, 0x4F), (0x60, 0x7F)),
    (0x1A, "Zen 6"): ((0x50, 0x5F), (0x80, 0xAF), (0xC0, 0xEF)),
}
# devicelab names a few steps within a Linux generation.
SAME_GENERATION = {"Zen+": "Zen", "Zen 3+": "Zen 3", "Zen 4c": "Zen 4"}


@pytest.mark.parametrize(("vendor", "family", "model", "stepping", "expected"), REAL_CPUS)
def test_real_cpus(vendor, family, model, stepping, expected):
    uarch = cpu_tables.lookup(vendor, family, model, stepping)
    assert uarch is not None and uarch.name == expected


def test_table_archspec_names_are_archspec_targets():
    from archspec.cpu import TARGETS

    entries = list(cpu_tables.INTEL_FAMILY_6.values()) + list(cpu_tables.ARM_PARTS.values())
    entries += [uarch for ranges in cpu_tables.AMD_FAMILIES.values() for *_, uarch in ranges]
    for uarch in entries:
        assert uarch.archspec is None or uarch.archspec in TARGETS, uarch


def test_unknown_cpus_are_none():
    assert cpu_tables.lookup("GenuineIntel", 6, 0x01, 0) is None
    assert cpu_tables.lookup("HygonGenuine", 0x18, 0x00, 0) is None
    assert cpu_tables.lookup("GenuineIntel", None, None, None) is None


def test_arm_parts():
    assert cpu_tables.arm_uarch(0x41, 0xD4F).name == "Neoverse V2"  # NVIDIA Grace, AWS Graviton4
    assert cpu_tables.arm_uarch(0x41, 0xD0C).name == "Neoverse N1"  # AWS Graviton2
    assert cpu_tables.arm_uarch(0x61, 0x022) is None  # Apple: not by part number


# Every compute capability design.md lists (cuda-samples helper_cuda.h names), and some it implies.
CAPABILITIES = [
    ((3, 0), "Kepler"),
    ((3, 5), "Kepler"),
    ((3, 7), "Kepler"),
    ((5, 0), "Maxwell"),
    ((5, 2), "Maxwell"),
    ((5, 3), "Maxwell"),
    ((6, 0), "Pascal"),
    ((6, 1), "Pascal"),
    ((6, 2), "Pascal"),
    ((7, 0), "Volta"),
    ((7, 2), "Volta"),
    ((7, 5), "Turing"),
    ((8, 0), "Ampere"),
    ((8, 6), "Ampere"),
    ((8, 7), "Ampere"),
    ((8, 9), "Ada Lovelace"),
    ((9, 0), "Hopper"),
    ((10, 0), "Blackwell"),
    ((10, 3), "Blackwell"),
    ((11, 0), "Blackwell"),
    ((12, 0), "Blackwell"),
    ((12, 1), "Blackwell"),
]


@pytest.mark.parametrize(("cc", "name"), CAPABILITIES)
def test_compute_capability_architecture(cc, name):
    assert gpu_tables.cuda_architecture(*cc) == name


def test_unlisted_capability_is_unknown():
    assert gpu_tables.cuda_architecture(7, 7) is None
    assert gpu_tables.cuda_architecture(2, 0) is None


# The per-SM rates, for cards not in gpu_published: SMs x the boost clock the datasheet states x the rate must give
# NVIDIA's dense figure (fp32 accumulation). This checks the rates, not the clock: the peak the report prints
# for real cards from NVML's own clock is tested in test_hardware_peaks.py.
# (card, cc, GeForce, SMs, datasheet boost MHz, dtype, NVIDIA's published dense TFLOP/s)
PUBLISHED_PEAKS = [
    ("V100 SXM2", (7, 0), False, 80, 1530, "fp32", 15.7),
    ("V100 SXM2", (7, 0), False, 80, 1530, "fp16", 125),
    ("T4", (7, 5), False, 40, 1590, "fp16", 65),
    ("RTX 2080 Ti", (7, 5), True, 68, 1545, "fp16", 53.8),  # Turing whitepaper: 107.6 with fp16 accumulate
    ("A100 SXM", (8, 0), False, 108, 1410, "fp32", 19.5),
    ("A100 SXM", (8, 0), False, 108, 1410, "tf32", 156),
    ("A100 SXM", (8, 0), False, 108, 1410, "bf16", 312),
    ("RTX A6000", (8, 6), False, 84, 1800, "fp32", 38.7),
    ("RTX A6000", (8, 6), False, 84, 1800, "tf32", 77.4),
    ("RTX 3090", (8, 6), True, 82, 1695, "fp32", 35.6),
    ("RTX 3090", (8, 6), True, 82, 1695, "tf32", 35.6),
    ("RTX 3090", (8, 6), True, 82, 1695, "bf16", 71),
    ("L40S", (8, 9), False, 142, 2520, "fp32", 91.6),
    ("L40S", (8, 9), False, 142, 2520, "bf16", 362),
    ("L40S", (8, 9), False, 142, 2520, "fp8", 733),
    ("RTX 4090", (8, 9), True, 128, 2520, "fp32", 82.6),
    ("RTX 4090", (8, 9), True, 128, 2520, "bf16", 165.2),
    ("RTX 4090", (8, 9), True, 128, 2520, "fp8", 330.3),
    ("H100 SXM", (9, 0), False, 132, 1980, "fp32", 66.9),
    ("H100 SXM", (9, 0), False, 132, 1830, "tf32", 494.7),
    ("H100 SXM", (9, 0), False, 132, 1830, "bf16", 989.4),
    ("H100 SXM", (9, 0), False, 132, 1830, "fp8", 1978.9),
    ("RTX 5090", (12, 0), True, 170, 2407, "fp32", 104.8),
    ("RTX 5090", (12, 0), True, 170, 2407, "bf16", 209.5),
]


@pytest.mark.parametrize(("card", "cc", "geforce", "sms", "mhz", "dtype", "published"), PUBLISHED_PEAKS)
def test_per_sm_rate_at_the_datasheet_clock_gives_the_published_figure(
    card, cc, geforce, sms, mhz, dtype, published
):
    rate = gpu_tables.matmul_flop_per_clock(*cc, geforce=geforce)[dtype]
    assert sms * mhz * 1e6 * rate / 1e12 == pytest.approx(published, rel=0.015), card


@pytest.mark.parametrize(
    ("card", "mem_mhz", "bus", "published_gbs"),
    [("H100 SXM", 2619, 5120, 3350), ("A100 40GB", 1215, 5120, 1555), ("RTX 4090", 10501, 384, 1008)],
)
def test_memory_bandwidth_peak_matches_published_figure(card, mem_mhz, bus, published_gbs):
    (peak,) = cuda_peaks(9, 0, None, None, mem_mhz, bus)
    assert peak.what == "memory_bandwidth"
    assert peak.value == pytest.approx(published_gbs, rel=0.01), card


def test_native_dtypes_follow_hardware_generations():
    assert gpu_tables.cuda_native_dtypes(7, 5) == ("fp16",)
    assert gpu_tables.cuda_native_dtypes(8, 0) == ("tf32", "bf16", "fp16")
    assert gpu_tables.cuda_native_dtypes(8, 9) == ("tf32", "bf16", "fp16", "fp8")
    assert gpu_tables.cuda_native_dtypes(6, 1) == ()


@pytest.mark.parametrize(
    ("gfx", "name"),
    [
        ("gfx906", "GCN 5 (Vega 20)"),
        ("gfx908", "CDNA 1"),
        ("gfx90a:sramecc+:xnack-", "CDNA 2"),
        ("gfx942:sramecc+:xnack-", "CDNA 3"),
        ("gfx950", "CDNA 4"),
        ("gfx1030", "RDNA 2"),
        ("gfx1100", "RDNA 3"),
        ("gfx1151", "RDNA 3.5"),
        ("gfx1201", "RDNA 4"),
    ],
)
def test_amd_gfx_targets(gfx, name):
    assert gpu_tables.amd_architecture(gfx) == name


@pytest.mark.parametrize(
    ("cc", "arch_list", "expected"),
    [
        ((9, 0), ["sm_80", "sm_90"], True),
        ((8, 6), ["sm_80"], True),  # an sm_80 cubin runs on 8.6
        ((8, 9), ["sm_90a"], False),  # arch-specific cubins run only on 9.0
        ((9, 0), ["sm_90a"], True),
        ((12, 0), ["sm_80", "sm_90", "compute_90"], True),  # PTX JIT
        ((12, 0), ["sm_80", "sm_86", "sm_90"], False),
        ((7, 5), ["sm_80", "compute_80"], False),  # PTX only runs on newer cards
        ((9, 0), [], None),
    ],
)
def test_arch_list_rule(cc, arch_list, expected):
    assert gpu_tables.cuda_arch_supported(*cc, arch_list) is expected


@pytest.mark.parametrize(("family", "generation"), list(AMD_C_ZEN_RANGES))
def test_amd_zen_ranges_match_linux_amd_c(family, generation):
    for first, last in AMD_C_ZEN_RANGES[(family, generation)]:
        for model in range(first, last + 1):
            uarch = cpu_tables.lookup("AuthenticAMD", family, model, 0)
            assert uarch is not None, hex(model)
            assert SAME_GENERATION.get(uarch.name, uarch.name) == generation, (hex(family), hex(model))


def test_amx_on_a_model_number_without_it_is_flagged_as_a_vm_mismatch():
    rocket_lake = cpu_tables.lookup("GenuineIntel", 6, 0xA7, 1)  # what this project's cloud VM reports
    note = cpu_tables.model_feature_mismatch("GenuineIntel", rocket_lake, frozenset({"avx512f", "amx_tile"}))
    assert note is not None and "Rocket Lake" in note and "AMX" in note and "hypervisor" in note
    assert cpu_tables.model_feature_mismatch("GenuineIntel", rocket_lake, frozenset({"avx512f"})) is None
    sapphire = cpu_tables.lookup("GenuineIntel", 6, 0x8F, 8)
    assert cpu_tables.model_feature_mismatch("GenuineIntel", sapphire, frozenset({"amx_tile"})) is None
