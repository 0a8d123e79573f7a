#!/usr/bin/env bash
# suite_models.sh BUILD - real torchvision models through qforge's float
# runtime, checked against ONNX Runtime (an independent implementation).
#
# Exports resnet18, mobilenet_v2, squeezenet1_1 and alexnet (random seeded
# weights, opset 13) into BUILD/fixtures once (cached), runs each with
# `qforge run` and with tests/node/ort_run.js on the same seeded input, and
# compares the outputs with tests/tools/npycompare.py:
#   max_rel_err = max|qforge - ort| / max|ort|   must be <= 1e-4.
# Ends with "suite_models: N passed, N failed".
set -uo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
MODELS=(resnet18 mobilenet_v2 squeezenet1_1 alexnet)
FIX="$BUILD/fixtures"
WORK="$BUILD/suite_models"
TOL=1e-4
mkdir -p "$FIX" "$WORK"

fail_all() { # reason
  echo "suite_models: $1"
  echo "suite_models: 0 passed, ${#MODELS[@]} failed"
  exit 1
}

[[ -x "$BUILD/qforge" ]] || fail_all "$BUILD/qforge not built (make BUILD=$BUILD all)"
command -v node >/dev/null || fail_all "node not found (scripts/install-deps.sh)"
[[ -d tests/node/node_modules/onnxruntime-node ]] ||
  fail_all "onnxruntime-node missing: cd tests/node && npm install --ignore-scripts"
# Torch's export is single-shot and cached; 2 threads to share the machine.
OMP_NUM_THREADS=2 "$PY" tests/fixtures/export_models.py "$FIX" "${MODELS[@]}" ||
  fail_all "model export failed"

pass=0; fail=0
for m in "${MODELS[@]}"; do
  model="$FIX/$m.onnx" in="$FIX/${m}_in.npy"
  got="$WORK/${m}_qforge.npy" ref="$FIX/${m}_ort.npy"
  # ONNX Runtime's answer depends only on the cached fixture: cache it too.
  if [[ ! -f "$ref" || "$ref" -ot "$model" ]]; then
    if ! node tests/node/ort_run.js "$model" "$in" "$ref.tmp.npy" >"$WORK/$m.ort.log" 2>&1; then
      echo "$m: FAIL onnxruntime: $(tail -1 "$WORK/$m.ort.log")"; fail=$((fail + 1)); continue
    fi
    mv "$ref.tmp.npy" "$ref"
  fi
  rm -f "$got"
  t0=$(date +%s.%N)
  if ! "$BUILD/qforge" run "$model" --input "$in" -o "$got" >"$WORK/$m.qf.log" 2>&1; then
    echo "$m: FAIL qforge run: $(tail -3 "$WORK/$m.qf.log" | tr '\n' ' ')"
    fail=$((fail + 1)); continue
  fi
  t1=$(date +%s.%N)
  line=$("$PY" tests/tools/npycompare.py "$got" "$ref" --tol "$TOL" --label "$m")
  rc=$?
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  printf '%s  (qforge run %ss)\n' "$line" "$secs"
  if [[ $rc -eq 0 ]]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done
echo "suite_models: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
