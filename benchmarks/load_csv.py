"""Loading a large numeric CSV: devicelab's loader against pyarrow's reader plus the conversion to one
float32 matrix, and the same data as Parquet.

    python benchmarks/load_csv.py [--rows 1000000] [--cols 64] [--repeats 3]

Writes a ROWS x COLS numeric CSV (and a Parquet copy) with a target column into a temporary folder, then
times, each in a fresh subprocess (so peak memory is that process's own; tracemalloc does not see Arrow's
allocations, so the peak is the process's high-water resident set, VmHWM, less what it had after imports):

- reference: ``pyarrow.csv.read_csv`` + ``np.column_stack(...).astype(float32)`` of the feature columns;
- devicelab: ``load_dataset`` of the CSV: read, roles, imputation check, split and scaling, into float32
  train/validation/test matrices (everything a training run needs);
- the same two for the Parquet file.

Prints medians over the repeats, the ratios devicelab / reference, and the peak memory against the goal
(file size + 3x the float32 matrix).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np
import pyarrow as pa, pyarrow.csv as pacsv, pyarrow.parquet as pq
from devicelab.data import DataSpec, load_dataset
kind, path, n_features = sys.argv[1], sys.argv[2], int(sys.argv[3])
names = [f"x{i}" for i in range(n_features)]


def high_water_kib():
    # this process's peak resident set (Linux VmHWM: reset by exec, unlike ru_maxrss, which a child
    # inherits from the parent that forked it)
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


before = high_water_kib()
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu_before = usage.ru_utime + usage.ru_stime
started = time.perf_counter()
if kind.startswith("reference"):
    table = pq.read_table(path) if path.endswith(".parquet") else pacsv.read_csv(path)
    matrix = np.column_stack([table.column(n).to_numpy() for n in names]).astype(np.float32)
    shape = matrix.shape
else:
    data = load_dataset(DataSpec(data=path, target="y"))
    shape = (len(data.x_train) + len(data.x_val) + len(data.x_test), data.n_features)
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime - cpu_before  # all threads: less sensitive than wall time to a busy machine
peak = high_water_kib()
print(json.dumps({"s": seconds, "cpu_s": cpu, "peak_mb": peak / 1024, "extra_mb": (peak - before) / 1024}))
"""


def write_files(folder: Path, rows: int, cols: int) -> tuple[Path, Path]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    columns = {f"x{i}": np.round(rng.normal(size=rows), 4) for i in range(cols)}
    columns["y"] = np.round(sum(columns[f"x{i}"] for i in range(min(cols, 8))) + rng.normal(size=rows), 4)
    table = pa.table(columns)
    csv_path, parquet_path = folder / "wide.csv", folder / "wide.parquet"
    pacsv.write_csv(table, csv_path)
    pq.write_table(table, parquet_path)
    return csv_path, parquet_path


def measure(kind: str, path: Path, cols: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(path), str(cols)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        csv_path, parquet_path = write_files(Path(tmp), args.rows, args.cols)
        file_mb = csv_path.stat().st_size / 2**20
        matrix_mb = args.rows * args.cols * 4 / 2**20
        print(f"{args.rows} x {args.cols} numbers (+ target): CSV {file_mb:.0f} MiB, Parquet "
              f"{parquet_path.stat().st_size / 2**20:.0f} MiB, float32 matrix {matrix_mb:.0f} MiB")  # fmt: skip
        kinds = {
            "reference csv": csv_path,
            "devicelab csv": csv_path,
            "reference parquet": parquet_path,
            "devicelab parquet": parquet_path,
        }
        runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
        for _ in range(args.repeats):  # interleaved, so a busy moment of the machine hits every kind
            for kind, path in kinds.items():
                runs[kind].append(measure(kind, path, args.cols))
        results = {}
        for kind, measured in runs.items():
            seconds = [r["s"] for r in measured]
            results[kind] = r = {
                "s": statistics.median(seconds),
                "spread": max(seconds) - min(seconds),
                "cpu_s": statistics.median(m["cpu_s"] for m in measured),
                "extra_mb": statistics.median(m["extra_mb"] for m in measured),
                "peak_mb": statistics.median(m["peak_mb"] for m in measured),
            }
            print(f"{kind:>18}: {r['s']:.2f} s wall (spread {r['spread']:.2f}), {r['cpu_s']:.2f} s CPU, "
                  f"peak RSS {r['peak_mb']:.0f} MiB ({r['extra_mb']:.0f} MiB above the process after imports)")  # fmt: skip
    goal_mb = file_mb + 3 * matrix_mb
    for fmt in ("csv", "parquet"):
        mine, ref = results[f"devicelab {fmt}"], results[f"reference {fmt}"]
        print(f"{fmt}: devicelab / pyarrow+float32 = {mine['s'] / ref['s']:.2f}x wall, "
              f"{mine['cpu_s'] / ref['cpu_s']:.2f}x CPU (goal <= 1.5x); "
              f"memory {mine['extra_mb']:.0f} MiB vs goal {goal_mb:.0f} MiB (file + 3x matrix)")  # fmt: skip
    ratio = results["devicelab parquet"]["s"] / results["devicelab csv"]["s"]
    print(f"devicelab Parquet / CSV = {ratio:.2f}x time (goal <= 1x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
