#!/usr/bin/env bash
# The GPU checks of ghnlib in one run: build ghnlib._C with CUDA in place,
# check that its CUDA kernels are registered, run the CUDA tests, a smoke run
# of tests/ops and tests/nn, and the tile-normalise benchmark (CPU and CUDA
# rows). Every step is timed and bounded by `timeout`; a failed step is
# recorded and the next one runs; all steps share a budget of BUDGET_S
# seconds. Without a CUDA build of torch or a CUDA device, the CUDA steps are
# reported as skipped and the script exits 0.
#
#   OUT=<dir> PYTHON=<python> bash benchmarks/gpu/run.sh
#
# Writes $OUT/gpu_results.json, $OUT/gpu_results.md and one log per step
# ($OUT/logs/<step>.log). See benchmarks/gpu/README.md.
set -uo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-out/gpu}
BUDGET_S=${BUDGET_S:-480}
mkdir -p "$OUT/logs"
results="$OUT/steps.tsv"
: > "$results"
start_all=$(date +%s)

note() { echo "[gpu-check $(date -u +%H:%M:%S)] $*"; }

remaining() { echo $(( BUDGET_S - ($(date +%s) - start_all) )); }

# record NAME STATUS SECONDS FIGURES
record() {
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$results"
  note "$1: $2 (${3}s) $4"
}

# step NAME CAP_S CUDA_ONLY COMMAND...: runs COMMAND under
# timeout min(CAP_S, what is left of the budget), logs to $OUT/logs/NAME.log.
step() {
  local name=$1 cap=$2 cuda_only=$3
  shift 3
  local log="$OUT/logs/$name.log"
  if [ "$cuda_only" = 1 ] && [ -n "$skip_cuda" ]; then
    record "$name" skipped 0 "$skip_cuda"
    return
  fi
  local left
  left=$(remaining)
  if [ "$left" -le 5 ]; then
    record "$name" skipped 0 "the budget of ${BUDGET_S}s is spent"
    return
  fi
  local limit=$(( cap < left ? cap : left ))
  note "$name: starting (limit ${limit}s): $*"
  local t0 rc
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
  rc=$?
  local seconds=$(( $(date +%s) - t0 ))
  tail -n 3 "$log" | sed "s/^/  [$name] /"
  local figures
  figures=$(figures_of "$name" "$log")
  if [ "$rc" -eq 0 ]; then
    record "$name" passed "$seconds" "$figures"
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    record "$name" failed "$seconds" "timed out after ${limit}s; $figures"
  else
    record "$name" failed "$seconds" "exit $rc; $figures"
  fi
}

# The key figures of a step, from its log, on one line.
figures_of() {
  local name=$1 log=$2
  case $name in
    cuda_build)
      local so
      so=$(ls ghnlib/_C*.so 2>/dev/null | head -n 1)
      [ -n "$so" ] && echo "$(basename "$so") $(du -k "$so" | cut -f1) KiB" ;;
    cuda_registration)
      grep '^registered:' "$log" | tail -n 1 ;;
    cuda_tests | smoke_tests)
      grep -E '(passed|failed|error|skipped|deselected)' "$log" | tail -n 1 \
        | tr -d '=' | sed 's/^ *//' ;;
    bench_tile_normalize)
      echo "$(grep -c '^| cuda |' "$log") CUDA rows, $(grep -c '^| cpu |' "$log") CPU rows (table in logs/$name.log)" ;;
    *) tail -n 1 "$log" ;;
  esac | tr '\t\n' '  '
}

# Environment: what torch sees. Never skipped.
step environment 60 0 "$PYTHON" -c '
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__,
      "cuda", torch.version.cuda, "devices", torch.cuda.device_count())
if torch.cuda.is_available():
    print("device:", torch.cuda.get_device_name(0))'

skip_cuda=""
torch_cuda=$("$PYTHON" -c 'import torch; print(torch.version.cuda or "")' 2>/dev/null)
if [ -z "$torch_cuda" ]; then
  skip_cuda="torch is not a CUDA build (torch.version.cuda is None)"
elif [ "$("$PYTHON" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null)" != 1 ]; then
  skip_cuda="no CUDA device (torch.cuda.is_available() is False)"
fi
[ -n "$skip_cuda" ] && note "CUDA steps skipped: $skip_cuda"

# torch guesses CUDA_HOME from where nvcc is found; with nvcc in
# /usr/local/bin that guess (/usr/local) holds no libcudart.so and the link
# fails (`cannot find -lcudart`), so a toolkit directory that has it is used.
if [ -z "${CUDA_HOME:-}" ] && command -v nvcc > /dev/null; then
  for candidate in "$(dirname "$(dirname "$(command -v nvcc)")")" \
      /usr/local/cuda /usr/local/cuda-*; do
    if [ -e "$candidate/lib64/libcudart.so" ] \
        || [ -e "$candidate/lib/libcudart.so" ]; then
      export CUDA_HOME=$candidate
      break
    fi
  done
fi

# In place: the GPU machine's copy of the tree is thrown away after the run.
# build/ (ignored) is removed afterwards; the in-place ghnlib/_C*.so is what
# the later steps import.
step cuda_build 240 1 env GHNLIB_FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=9.0 \
  MAX_JOBS="${MAX_JOBS:-16}" "$PYTHON" setup.py build_ext --inplace
[ -z "$skip_cuda" ] && rm -rf build

step cuda_registration 60 1 "$PYTHON" -c '
import torch, ghnlib._C as ext
from ghnlib.ops import backend
assert ext.with_cuda, "ghnlib._C was built without CUDA kernels"
src = torch.randn(2, 4, 4, 3, 3, device="cuda")
shapes = torch.tensor([[4, 4, 3, 3], [8, 1, 1, 1]])
offsets = torch.tensor([0, 144, 152])
scale = torch.ones(2, device="cuda")
out = torch.ops.ghnlib.tile_normalize(src, shapes, offsets, scale)
assert out.is_cuda and out.numel() == 152
expected = torch.ops.ghnlib.tile_normalize(src.cpu(), shapes, offsets, scale.cpu())
torch.testing.assert_close(out.cpu(), expected)
print("registered: tile_normalize runs on cuda, backend(cuda) =", backend("cuda"))'

step cuda_tests 120 1 "$PYTHON" -m pytest -p no:cacheprovider -q \
  tests/ops tests/nn -m cuda -k cuda -rs
# The same selection without -m: tests that need CUDA by skipif only.
step cuda_named_tests 120 1 "$PYTHON" -m pytest -p no:cacheprovider -q \
  tests/ops tests/nn -k cuda -rs
step smoke_tests 180 1 "$PYTHON" -m pytest -p no:cacheprovider -x -q \
  tests/ops tests/nn
step bench_tile_normalize 150 1 "$PYTHON" benchmarks/bench_tile_normalize.py \
  --repeat 5

"$PYTHON" - "$results" "$OUT" "$BUDGET_S" "$(( $(date +%s) - start_all ))" <<'PY'
import json
import sys
from pathlib import Path

results, out, budget, total = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
steps = []
for line in Path(results).read_text().splitlines():
    name, status, seconds, figures = line.split('\t', 3)
    steps.append({'name': name, 'status': status, 'seconds': int(seconds),
                  'figures': figures.strip()})
summary = {'budget_s': int(budget), 'total_s': int(total), 'steps': steps}
(out / 'gpu_results.json').write_text(json.dumps(summary, indent=2) + '\n')
rows = ['| step | status | seconds | key figures |', '|---|---|---|---|']
rows += [f"| {s['name']} | {s['status']} | {s['seconds']} | "
         f"{s['figures'].replace('|', '/')} |" for s in steps]
rows.append(f'\nTotal {total} s of a {budget} s budget.')
(out / 'gpu_results.md').write_text('\n'.join(rows) + '\n')
print('\n'.join(rows))
PY
rm -f "$results"
note "wrote $OUT/gpu_results.json and $OUT/gpu_results.md"
exit 0
