"""GPU tables: compute capability -> architecture, per-SM throughput, native dtypes, AMD gfx targets.

Sources: cuda-samples ``helper_cuda.h`` (``_ConvertSMVer2ArchName``) for the architecture names; NVIDIA's
architecture whitepapers (Volta, Turing, Ampere GA100 and GA102, Ada, Hopper, Blackwell) for the dense
FLOP per clock per SM of the CUDA cores (fp32) and tensor cores (tf32, bf16, fp16, fp8); LLVM's AMDGPU
processor table for gfx targets. For a card that is not in ``gpu_published`` (NVIDIA's per-product figures), a
peak is these per-SM figures times the card's own SM count and maximum SM clock.
"""

from __future__ import annotations

# (major, minor) -> name; minor None covers the whole major version.
CUDA_ARCHITECTURES: dict[tuple[int, int | None], str] = {
    (3, None): "Kepler",
    (5, None): "Maxwell",
    (6, None): "Pascal",
    (7, 0): "Volta",
    (7, 2): "Volta",
    (7, 5): "Turing",
    (8, 0): "Ampere",
    (8, 6): "Ampere",
    (8, 7): "Ampere",
    (8, 9): "Ada Lovelace",
    (9, 0): "Hopper",
    (10, None): "Blackwell",
    (11, 0): "Blackwell",
    (12, None): "Blackwell",
}

# Dense FLOP per clock per SM. fp32 is the CUDA cores (what an fp32 matmul without TF32 uses), the rest tensor
# cores. Turing/GA10x/Ada/GB20x figures are the full-rate (professional card) ones; see HALF_RATE_ON_GEFORCE.
SM_FLOP_PER_CLOCK: dict[tuple[int, int | None], dict[str, int]] = {
    (3, None): {"fp32": 384},
    (5, None): {"fp32": 256},
    (6, 0): {"fp32": 128, "fp16": 256},
    (6, 1): {"fp32": 256},
    (7, 0): {"fp32": 128, "fp16": 1024},
    (7, 2): {"fp32": 128, "fp16": 1024},
    (7, 5): {"fp32": 128, "fp16": 1024},
    (8, 0): {"fp32": 128, "tf32": 1024, "bf16": 2048, "fp16": 2048},
    (8, 6): {"fp32": 256, "tf32": 512, "bf16": 1024, "fp16": 1024},
    (8, 7): {"fp32": 256},
    (8, 9): {"fp32": 256, "tf32": 512, "bf16": 1024, "fp16": 1024, "fp8": 2048},
    (9, 0): {"fp32": 256, "tf32": 2048, "bf16": 4096, "fp16": 4096, "fp8": 8192},
    (10, 0): {"fp32": 256, "tf32": 4096, "bf16": 8192, "fp16": 8192, "fp8": 16384},
    (12, 0): {"fp32": 256, "tf32": 512, "bf16": 1024, "fp16": 1024, "fp8": 2048},
}

# Where GeForce cards run tensor-core matmuls with fp32 accumulation (every PyTorch fp16/bf16/tf32 matmul) at
# half the professional cards' rate: the whitepapers' GeForce tables list "FP16 Tensor TFLOPS with FP32
# Accumulate" at half the "with FP16 Accumulate" figure (Turing: RTX 2080 Ti 56.9 vs 113.8; GA102: RTX 3090
# 71 vs 142; Ada: RTX 4090 165.2 vs 330.3; RTX Blackwell: RTX 5090 209.5 vs 419), while Quadro/RTX A/L40S/RTX
# PRO cards of the same chips list both at the full rate. TF32 and FP8 follow the same halving.
HALF_RATE_ON_GEFORCE = {(7, 5), (8, 6), (8, 9), (12, 0)}

# AMD gfx target -> architecture; prefixes catch the variants (gfx1101, gfx1151, ...).
AMD_GFX: dict[str, str] = {
    "gfx900": "GCN 5 (Vega)",
    "gfx906": "GCN 5 (Vega 20)",
    "gfx908": "CDNA 1",
    "gfx90a": "CDNA 2",
    "gfx940": "CDNA 3",
    "gfx941": "CDNA 3",
    "gfx942": "CDNA 3",
    "gfx950": "CDNA 4",
}
AMD_GFX_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gfx101", "RDNA 1"),
    ("gfx103", "RDNA 2"),
    ("gfx110", "RDNA 3"),
    ("gfx115", "RDNA 3.5"),
    ("gfx12", "RDNA 4"),
)
AMD_NATIVE_DTYPES: dict[str, tuple[str, ...]] = {
    "CDNA 1": ("bf16", "fp16"),
    "CDNA 2": ("bf16", "fp16"),
    "CDNA 3": ("tf32", "bf16", "fp16", "fp8"),
    "CDNA 4": ("bf16", "fp16", "fp8"),
    "RDNA 3": ("bf16", "fp16"),
    "RDNA 3.5": ("bf16", "fp16"),
    "RDNA 4": ("bf16", "fp16", "fp8"),
}


def _lookup(table: dict, major: int, minor: int):
    return table.get((major, minor), table.get((major, None)))


def cuda_architecture(major: int, minor: int) -> str | None:
    return _lookup(CUDA_ARCHITECTURES, major, minor)


def sm_flop_per_clock(major: int, minor: int) -> dict[str, int]:
    """Dense FLOP/clock/SM by dtype for this compute capability ({} when not in the table)."""
    return dict(_lookup(SM_FLOP_PER_CLOCK, major, minor) or {})


def matmul_flop_per_clock(major: int, minor: int, geforce: bool) -> dict[str, int]:
    """Dense FLOP/clock/SM by dtype with fp32 accumulation, for this card's market (GeForce or not)."""
    rates = sm_flop_per_clock(major, minor)
    if geforce and (major, minor) in HALF_RATE_ON_GEFORCE:
        rates = {dtype: flop if dtype == "fp32" else flop // 2 for dtype, flop in rates.items()}
    return rates


def cuda_native_dtypes(major: int, minor: int) -> tuple[str, ...]:
    """Matmul dtypes with hardware support: tf32 and bf16 from Ampere, fp16 from Pascal GP100, fp8 from Ada."""
    cc = (major, minor)
    dtypes = []
    if cc >= (8, 0):
        dtypes += ["tf32", "bf16"]
    if cc >= (7, 0) or cc in ((6, 0), (6, 2)):
        dtypes.append("fp16")
    if cc >= (8, 9):
        dtypes.append("fp8")
    return tuple(dtypes)


def gfx_base(gcn_arch_name: str) -> str:
    """'gfx942:sramecc+:xnack-' -> 'gfx942'."""
    return gcn_arch_name.split(":")[0].strip()


def amd_architecture(gfx: str) -> str | None:
    gfx = gfx_base(gfx)
    if gfx in AMD_GFX:
        return AMD_GFX[gfx]
    return next((name for prefix, name in AMD_GFX_PREFIXES if gfx.startswith(prefix)), None)


def amd_native_dtypes(architecture: str | None) -> tuple[str, ...]:
    return AMD_NATIVE_DTYPES.get(architecture or "", ())


def cuda_arch_supported(major: int, minor: int, arch_list: list[str]) -> bool | None:
    """Does torch's ``get_arch_list()`` hold kernels this card runs?

    A cubin ``sm_XY`` runs on the same major version with minor >= Y (``sm_XYa`` only on exactly X.Y); PTX
    ``compute_XY`` is compiled by the driver for any capability >= X.Y. None when the list is empty.
    """
    if not arch_list:
        return None
    cc = major * 10 + minor
    for arch in arch_list:
        kind, _, number = arch.partition("_")
        digits = number.rstrip("af")
        if not digits.isdigit():
            continue
        n = int(digits)
        if kind == "sm" and (n == cc or (number == digits and n // 10 == major and n % 10 <= minor)):
            return True
        if kind == "compute" and n <= cc:
            return True
    return False
