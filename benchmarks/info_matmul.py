"""Is ``devicelab info --measure``'s fp32 matmul figure right? Compare it with a plain torch.matmul loop.

Both run in this process on the same device and problem size, in alternating order, for several rounds. Prints
each side's median TFLOP/s over the rounds with its spread (min-max), and the ratio devicelab / plain loop.
Exits 1 when the ratio is outside 0.8-1.2 (the figure would then misreport the hardware).

    python benchmarks/info_matmul.py                 # CPU
    python benchmarks/info_matmul.py --device cuda   # GPU (also --dtype bf16)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time

import torch

from devicelab.devices import resolve_device, synchronize
from devicelab.errors import UserError
from devicelab.hardware.measure import DTYPES, matmul_time, plan_for


def plain_loop_tflops(device: torch.device, dtype: str, n: int, seconds: float) -> float:
    """What a user would write: warm up, then time a loop of torch.matmul, synchronizing around it."""
    a = torch.randn(n, n, device=device, dtype=DTYPES[dtype])
    b = torch.randn(n, n, device=device, dtype=DTYPES[dtype])
    for _ in range(3):
        torch.matmul(a, b)
    synchronize(device)  # sync: the warm-up must finish before the clock starts
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.matmul(a, b)
        count += 1
        if count % 8 == 0:
            synchronize(device)  # sync: keep the queue short so the loop's clock check stays honest
    synchronize(device)  # sync: all queued products are inside the interval
    return 2 * n**3 * count / (time.perf_counter() - start) / 1e12


def devicelab_tflops(device: torch.device, dtype: str, n: int) -> float:
    plan = plan_for(device, None, quick=False)
    plan = dataclasses.replace(plan, matmul_n=n)
    return 2 * n**3 / matmul_time(device, dtype, plan).median / 1e12


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    device = resolve_device(args.device)
    n = plan_for(device, None, quick=False).matmul_n
    plain, lab = [], []
    for i in range(args.rounds):
        order = ("plain", "devicelab") if i % 2 == 0 else ("devicelab", "plain")
        for side in order:
            if side == "plain":
                plain.append(plain_loop_tflops(device, args.dtype, n, seconds=0.4))
            else:
                lab.append(devicelab_tflops(device, args.dtype, n))
    ratio = statistics.median(lab) / statistics.median(plain)
    print(f"device {device}, {args.dtype} matmul n={n}, {args.rounds} rounds (TFLOP/s)")
    for name, values in (("plain torch.matmul loop", plain), ("devicelab info --measure", lab)):
        print(
            f"  {name:<26} median {statistics.median(values):.4g}  spread {min(values):.4g}-{max(values):.4g}"
        )
    ok = 0.8 <= ratio <= 1.2
    print(f"  ratio devicelab / plain: {ratio:.3f}  ({'within' if ok else 'OUTSIDE'} 0.8-1.2)")
    if args.json:
        record = {
            "device": str(device),
            "dtype": args.dtype,
            "n": n,
            "plain": plain,
            "devicelab": lab,
            "ratio": ratio,
        }
        with open(args.json, "w") as handle:
            json.dump(record, handle, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as error:  # e.g. --device cuda on a machine without one
        print(f"{sys.argv[0]}: error: {error.one_line()}", file=sys.stderr)
        sys.exit(2)
