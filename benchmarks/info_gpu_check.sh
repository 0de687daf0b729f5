#!/usr/bin/env bash
# devicelab info on a CUDA machine: the info/hardware tests (GPU ones included), info and info --measure with
# their wall times next to `import torch`, and the matmul benchmark (fp32 and bf16) against a plain loop.
# Results go to $1 (default ./info-gpu-out): pytest.log, info.txt, measure.txt, measure.json, bench.txt.
set -uo pipefail
out=${1:-info-gpu-out}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
status=0
$py -c "import torch; p = torch.cuda.get_device_properties(0); print(torch.__version__, p); print([a for a in dir(p) if not a.startswith('_')])" | tee "$out/card.txt"
for i in 1 2; do
  TIMEFORMAT="import torch: %R s"
  { time $py -c "import torch"; } 2>>"$out/walltime.txt"
  TIMEFORMAT="devicelab info: %R s"
  { time $py -m devicelab info >"$out/info.txt"; } 2>>"$out/walltime.txt"
done
cat "$out/walltime.txt" "$out/info.txt"
timeout 200 $py -m pytest -q -p no:cacheprovider -o addopts= -m "gpu or not slow" tests/test_hardware_*.py tests/test_info_cli.py >"$out/pytest.log" 2>&1 || status=1
tail -n 15 "$out/pytest.log"
TIMEFORMAT="devicelab info --measure (terminal and JSON from one run): %R s"
{ time timeout 120 $py - "$out" >"$out/measure.txt" 2>&1 <<'PY' || status=1; } 2>>"$out/walltime.txt"
import json, sys
from devicelab.hardware import collect
from devicelab.hardware.report import to_dict
from devicelab.report.hardware import format_terminal
report = collect(measure=True)
print(format_terminal(report))
with open(sys.argv[1] + "/measure.json", "w") as handle:
    json.dump(to_dict(report), handle, indent=2)
PY
tail -n 1 "$out/walltime.txt"
tail -n 25 "$out/measure.txt"
for args in "--device cuda" "--device cuda --dtype bf16"; do
  # shellcheck disable=SC2086
  timeout 120 $py benchmarks/info_matmul.py $args --rounds 3 >>"$out/bench.txt" 2>&1 || status=1
done
cat "$out/bench.txt"
echo "info-gpu-check: exit status $status"
exit $status
