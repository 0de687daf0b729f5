"""NVIDIA's published dense matmul figures for the products this tool's users run, keyed by product name.

Why a per-product table next to the per-SM one (gpu_tables): NVIDIA computes its tensor-core figures at a
boost clock below the maximum SM clock NVML reports (H100 SXM: 989.4 TFLOP/s bf16 is 132 SMs x 4096 x 1830 MHz,
while NVML says 1980 MHz), and GeForce cards run fp32-accumulate tensor math at half the rate of the
professional cards of the same compute capability. For a known product the published figure is the peak; for
any other card the per-SM formula at the reported clock is the fallback (an upper bound).

Figures are TFLOP/s, dense (NVIDIA's "with sparsity" figures halved), tensor figures with fp32 accumulation
(what a PyTorch bf16/fp16 matmul does); fp32 is the CUDA cores (no TF32). Sources, per entry below:
- GA102 whitepaper: "NVIDIA Ampere GA102 GPU Architecture" v2.0, Appendix A (GeForce RTX 3090).
- Ada whitepaper: "NVIDIA Ada GPU Architecture", Appendix A (GeForce RTX 4090).
- RTX Blackwell whitepaper: "NVIDIA RTX Blackwell GPU Architecture", Appendix A (GeForce RTX 5090).
- A100 datasheet: "NVIDIA A100 Tensor Core GPU" (same figures for 40/80 GB, SXM4 and PCIe).
- L40S datasheet: "NVIDIA L40S GPU".
- H100 datasheet: "NVIDIA H100 Tensor Core GPU" (SXM, PCIe and NVL columns).
- H200 datasheet: "NVIDIA H200 Tensor Core GPU" (SXM column: the same figures as H100 SXM).
- HGX B200 datasheet: "NVIDIA HGX B200", individual Blackwell GPU column.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    """One product as torch and NVML name it, its SM count, and NVIDIA's dense figures by dtype."""

    sms: int  # another SM count under this name (a MIG slice, a cut-down variant) is not this product
    tflops: dict[str, float]
    source: str


_A100 = {"fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312}
_H100_SXM = {"fp32": 67, "tf32": 494.5, "bf16": 989.5, "fp16": 989.5, "fp8": 1979}

PRODUCTS: dict[str, Product] = {
    # GeForce: the tensor figures are the "with FP32 Accumulate" rows, half of the fp16-accumulate ones.
    "NVIDIA GeForce RTX 3090": Product(
        82, {"fp32": 35.6, "tf32": 35.6, "bf16": 71, "fp16": 71}, "GA102 whitepaper"
    ),
    "NVIDIA GeForce RTX 4090": Product(
        128, {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2, "fp16": 165.2, "fp8": 330.3}, "Ada whitepaper"
    ),
    "NVIDIA GeForce RTX 5090": Product(
        170,
        {"fp32": 104.8, "tf32": 104.8, "bf16": 209.5, "fp16": 209.5, "fp8": 419},
        "RTX Blackwell whitepaper",
    ),
    "NVIDIA A100-SXM4-40GB": Product(108, _A100, "A100 datasheet"),
    "NVIDIA A100-SXM4-80GB": Product(108, _A100, "A100 datasheet"),
    "NVIDIA A100-PCIE-40GB": Product(108, _A100, "A100 datasheet"),
    "NVIDIA A100 80GB PCIe": Product(108, _A100, "A100 datasheet"),
    "NVIDIA L40S": Product(
        142, {"fp32": 91.6, "tf32": 183, "bf16": 362.05, "fp16": 362.05, "fp8": 733}, "L40S datasheet"
    ),
    "NVIDIA H100 80GB HBM3": Product(132, _H100_SXM, "H100 datasheet, SXM"),
    "NVIDIA H100 PCIe": Product(
        114, {"fp32": 51, "tf32": 378, "bf16": 756.5, "fp16": 756.5, "fp8": 1513}, "H100 datasheet, PCIe"
    ),
    "NVIDIA H100 NVL": Product(
        132, {"fp32": 60, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5, "fp8": 1670.5}, "H100 datasheet, NVL"
    ),
    "NVIDIA H200": Product(132, _H100_SXM, "H200 datasheet, SXM"),
    "NVIDIA B200": Product(
        148, {"fp32": 75, "tf32": 1100, "bf16": 2250, "fp16": 2250, "fp8": 4500}, "HGX B200 datasheet"
    ),
}


def product(name: str | None, sms: int | None) -> Product | None:
    """The published figures for this card, when its name and SM count are a product in the table."""
    found = PRODUCTS.get((name or "").strip())
    return found if found is not None and found.sms == sms else None


def is_geforce(name: str | None) -> bool:
    """GeForce cards (desktop and laptop) carry the brand in the name torch and NVML report."""
    return "geforce" in (name or "").lower()
