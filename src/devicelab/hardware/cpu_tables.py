"""CPU family/model -> microarchitecture (generation) name, from public sources.

Intel: Linux ``arch/x86/include/asm/intel-family.h`` (family 6 model numbers) and the stepping split of model
0x55 (Skylake-SP / Cascade Lake / Cooper Lake) from Intel's specification updates.
AMD: the family/model ranges in Linux ``arch/x86/kernel/cpu/amd.c`` (Zen generations) and AMD's revision guides.
Arm: the "CPU part" numbers of Arm Ltd. cores in Linux ``arch/arm64/include/asm/cputype.h``.

Each entry also names the nearest archspec target (``archspec.cpu.TARGETS``) so the two views can be compared.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Uarch:
    name: str
    archspec: str | None  # nearest archspec target name; None when archspec has none


def _intel(names: dict[str, tuple[str | None, tuple[int, ...]]]) -> dict[int, Uarch]:
    table: dict[int, Uarch] = {}
    for name, (archspec, models) in names.items():
        for model in models:
            table[model] = Uarch(name, archspec)
    return table


# Intel family 6: model -> microarchitecture (intel-family.h).
INTEL_FAMILY_6: dict[int, Uarch] = _intel(
    {
        "Core (Merom)": ("core2", (0x0F, 0x16)),
        "Penryn": ("core2", (0x17, 0x1D)),
        "Nehalem": ("nehalem", (0x1A, 0x1E, 0x1F, 0x2E)),
        "Westmere": ("westmere", (0x25, 0x2C, 0x2F)),
        "Sandy Bridge": ("sandybridge", (0x2A, 0x2D)),
        "Ivy Bridge": ("ivybridge", (0x3A, 0x3E)),
        "Haswell": ("haswell", (0x3C, 0x3F, 0x45, 0x46)),
        "Broadwell": ("broadwell", (0x3D, 0x47, 0x4F, 0x56)),
        "Skylake": ("skylake", (0x4E, 0x5E)),
        "Kaby Lake / Coffee Lake": ("skylake", (0x8E, 0x9E)),
        "Comet Lake": ("skylake", (0xA5, 0xA6)),
        "Cannon Lake": ("cannonlake", (0x66,)),
        "Ice Lake": ("icelake", (0x7D, 0x7E, 0x9D)),
        "Ice Lake-SP": ("icelake", (0x6A, 0x6C)),
        "Tiger Lake": ("icelake", (0x8C, 0x8D)),
        "Rocket Lake": ("icelake", (0xA7,)),
        "Lakefield": (None, (0x8A,)),
        "Alder Lake": ("alderlake", (0x97, 0x9A)),
        "Raptor Lake": ("alderlake", (0xB7, 0xBA, 0xBF)),
        "Meteor Lake": ("alderlake", (0xAA, 0xAC)),
        "Lunar Lake": (None, (0xBD,)),
        "Arrow Lake": ("arrowlake", (0xB5, 0xC5, 0xC6)),
        "Panther Lake": (None, (0xCC,)),
        "Sapphire Rapids": ("sapphirerapids", (0x8F,)),
        "Emerald Rapids": ("sapphirerapids", (0xCF,)),
        "Granite Rapids": ("sapphirerapids", (0xAD, 0xAE)),
        "Sierra Forest": (None, (0xAF,)),
        "Grand Ridge": (None, (0xB6,)),
        "Clearwater Forest": (None, (0xDD,)),
        "Knights Landing": ("mic_knl", (0x57,)),
        "Knights Mill": ("mic_knl", (0x85,)),
        "Bonnell (Atom)": (None, (0x1C, 0x26)),
        "Silvermont (Atom)": (None, (0x37, 0x4A, 0x4D, 0x5A, 0x5D, 0x4C)),
        "Goldmont (Atom)": (None, (0x5C, 0x5F)),
        "Goldmont Plus (Atom)": (None, (0x7A,)),
        "Tremont (Atom)": (None, (0x86, 0x96, 0x9C)),
        "Gracemont (Alder Lake-N)": (None, (0xBE,)),
    }
)

# Model 0x55 is three server generations told apart by stepping.
_INTEL_0x55_BY_STEPPING = (
    (range(0, 5), Uarch("Skylake-SP", "skylake_avx512")),
    (range(5, 8), Uarch("Cascade Lake", "cascadelake")),
    (range(10, 12), Uarch("Cooper Lake", "cascadelake")),
)

# AMD: family -> ((first model, last model, uarch), ...), first match wins; (0x00, 0xFF) is the default.
# Zen ranges as Linux's amd.c (bsp_init_amd) sets X86_FEATURE_ZEN1..ZEN6; Zen+ and Zen 3+ split out by model.
_ZEN, _ZEN2, _ZEN3, _ZEN4, _ZEN5, _ZEN6 = (
    Uarch("Zen", "zen"),
    Uarch("Zen 2", "zen2"),
    Uarch("Zen 3", "zen3"),
    Uarch("Zen 4", "zen4"),
    Uarch("Zen 5", "zen5"),
    Uarch("Zen 6", "zen6"),
)
AMD_FAMILIES: dict[int, tuple[tuple[int, int, Uarch], ...]] = {
    0x10: ((0x00, 0xFF, Uarch("K10", "k10")),),
    0x15: (
        (0x00, 0x01, Uarch("Bulldozer", "bulldozer")),
        (0x02, 0x02, Uarch("Piledriver", "piledriver")),
        (0x10, 0x1F, Uarch("Piledriver", "piledriver")),
        (0x30, 0x3F, Uarch("Steamroller", "steamroller")),
        (0x60, 0x7F, Uarch("Excavator", "excavator")),
    ),
    0x16: ((0x00, 0xFF, Uarch("Jaguar / Puma", None)),),
    0x17: (
        (0x08, 0x08, Uarch("Zen+", "zen")),
        (0x18, 0x18, Uarch("Zen+", "zen")),
        (0x00, 0x2F, _ZEN),
        (0x50, 0x5F, _ZEN),
        (0x30, 0x4F, _ZEN2),
        (0x60, 0x7F, _ZEN2),
        (0x90, 0x91, _ZEN2),
        (0xA0, 0xAF, _ZEN2),
    ),
    0x19: (
        (0x00, 0x0F, _ZEN3),
        (0x20, 0x3F, _ZEN3),
        (0x40, 0x4F, Uarch("Zen 3+", "zen3")),
        (0x50, 0x5F, _ZEN3),
        (0x10, 0x1F, _ZEN4),
        (0x60, 0x9F, _ZEN4),
        (0xA0, 0xAF, Uarch("Zen 4c", "zen4")),
    ),
    0x1A: (
        (0x00, 0x2F, _ZEN5),
        (0x40, 0x4F, _ZEN5),
        (0x60, 0x7F, _ZEN5),
        (0x50, 0x5F, _ZEN6),
        (0x80, 0xAF, _ZEN6),
        (0xC0, 0xEF, _ZEN6),
    ),
}

# Arm Ltd. (implementer 0x41) CPU part -> core; NVIDIA Grace is Neoverse V2, AWS Graviton 2/3/4 are N1/V1/V2.
ARM_PARTS: dict[int, Uarch] = {
    0xD08: Uarch("Cortex-A72", "cortex_a72"),
    0xD0B: Uarch("Cortex-A76", None),
    0xD0C: Uarch("Neoverse N1", "neoverse_n1"),
    0xD40: Uarch("Neoverse V1", "neoverse_v1"),
    0xD49: Uarch("Neoverse N2", "neoverse_n2"),
    0xD4F: Uarch("Neoverse V2", "neoverse_v2"),
    0xD84: Uarch("Neoverse V3", "neoverse_v3ae"),
    0xD8E: Uarch("Neoverse N3", None),
}


def intel_uarch(family: int, model: int, stepping: int | None = None) -> Uarch | None:
    if family != 6:
        return None
    if model == 0x55:
        if stepping is None:
            return Uarch("Skylake-SP / Cascade Lake", "skylake_avx512")
        for steppings, uarch in _INTEL_0x55_BY_STEPPING:
            if stepping in steppings:
                return uarch
        return Uarch("Skylake-SP / Cascade Lake", "skylake_avx512")
    return INTEL_FAMILY_6.get(model)


# Intel features that only some generations have: (flag, what it means, the family-6 names that have it).
# A hypervisor may report another model number than the silicon's (cloud VMs often do); the flags it passes
# through then contradict the table's name for that number.
INTEL_FEATURE_GENERATIONS: tuple[tuple[str, str, frozenset[str]], ...] = (
    (
        "amx_tile",
        "AMX (Sapphire Rapids or a newer Xeon)",
        frozenset({"Sapphire Rapids", "Emerald Rapids", "Granite Rapids"}),
    ),
)


def model_feature_mismatch(vendor: str | None, uarch: Uarch | None, flags: frozenset[str]) -> str | None:
    """Why the family/model table's name cannot be right for these feature flags, or None when it can be."""
    if vendor != "GenuineIntel" or uarch is None:
        return None
    for flag, meaning, names in INTEL_FEATURE_GENERATIONS:
        if flag in flags and uarch.name not in names:
            return (
                f"the model number says {uarch.name}, but the CPU has {meaning}: the hypervisor reports "
                "another model than the silicon's; trust the features"
            )
    return None


def amd_uarch(family: int, model: int) -> Uarch | None:
    for first, last, uarch in AMD_FAMILIES.get(family, ()):
        if first <= model <= last:
            return uarch
    return None


def arm_uarch(implementer: int, part: int) -> Uarch | None:
    return ARM_PARTS.get(part) if implementer == 0x41 else None


def lookup(vendor: str | None, family: int | None, model: int | None, stepping: int | None) -> Uarch | None:
    """The microarchitecture for a CPUID vendor string and family/model, or None when not in the tables."""
    if family is None or model is None:
        return None
    if vendor == "GenuineIntel":
        return intel_uarch(family, model, stepping)
    if vendor == "AuthenticAMD":
        return amd_uarch(family, model)
    return None
