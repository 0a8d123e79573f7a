#!/usr/bin/env bash
# demo.sh BUILD - the Fashion-MNIST showcase (`make demo`).
#
# 1. Trains a small CNN with PyTorch (tests/fixtures/train_fmnist.py) into
#    out/fmnist_cnn.onnx, unless that model and its out/fmnist_cnn.json
#    (PyTorch's own test accuracy) are already there.
# 2. Shows it with `qforge inspect` and evaluates it on the 10,000 test
#    images with `qforge eval`.
# 3. Compares PyTorch's accuracy with qforge's: they must agree to within
#    0.05 percentage points (5 images), else the script fails (exit 1).
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
QF="$BUILD/qforge"
OUT=out
MODEL="$OUT/fmnist_cnn.onnx"
META="$OUT/fmnist_cnn.json"
TOL_POINTS=0.05

if [[ ! -x $QF ]]; then
  echo "demo: $QF not built (make BUILD=$BUILD all)" >&2
  exit 2
fi
mkdir -p "$OUT"

echo "== 1. model"
if [[ -f $MODEL && -f $META ]]; then
  echo "reusing $MODEL (delete it to train again)"
else
  echo "training a small CNN on Fashion-MNIST with PyTorch (2 epochs, 2 threads)..."
  OMP_NUM_THREADS=2 "$PY" tests/fixtures/train_fmnist.py "$MODEL"
fi
torch_acc=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["test_accuracy"])' \
  "$META")

echo
echo "== 2. qforge inspect $MODEL"
"$QF" inspect "$MODEL"

echo
echo "== 3. qforge eval $MODEL --data fashion-mnist"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$QF" eval "$MODEL" --data fashion-mnist | tee "$log"
# "top-1:  90.50% (9050/10000)": take the exact counts, not the rounded %.
counts=$(sed -nE 's/^top-1:.*\(([0-9]+)\/([0-9]+)\).*/\1 \2/p' "$log" | head -1)
if [[ -z $counts ]]; then
  echo "demo: could not read qforge's top-1 accuracy from its output" >&2
  exit 1
fi
read -r correct total <<<"$counts"

echo
echo "== summary"
"$PY" - "$torch_acc" "$correct" "$total" "$TOL_POINTS" <<'EOF'
import sys
torch_acc, correct, total, tol = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), \
    float(sys.argv[4])
qf_pts = 100.0 * correct / total
pt_pts = 100.0 * torch_acc
diff = abs(qf_pts - pt_pts)
print(f"PyTorch test accuracy: {pt_pts:6.2f}%")
print(f"qforge  test accuracy: {qf_pts:6.2f}%  ({correct}/{total})")
ok = diff <= tol + 1e-9
print(f"difference: {diff:.2f} points (limit {tol:.2f}): {'agree' if ok else 'DISAGREE'}")
sys.exit(0 if ok else 1)
EOF
