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

echo
echo "== 4. compress: qforge quantize (calibration: 1000 training images)"
"$QF" quantize "$MODEL" --calib fashion-mnist --method minmax -o "$OUT/fmnist_cnn_int8.qfm"
"$QF" quantize "$MODEL" --calib fashion-mnist --bits 4 --method mse -q -o "$OUT/fmnist_cnn_w4.qfm"

echo
echo "== 5. verify: float vs int8 (integer runtime) on the 10,000 test images"
"$QF" eval "$OUT/fmnist_cnn_int8.qfm" --data fashion-mnist
"$QF" eval "$OUT/fmnist_cnn_w4.qfm" --data fashion-mnist --json >"$log"

echo
echo "== 6. export: ONNX QDQ for other runtimes"
"$QF" export "$OUT/fmnist_cnn_int8.qfm" --format onnx -o "$OUT/fmnist_cnn_int8.qdq.onnx"

echo
echo "== compressed models"
"$PY" - "$MODEL" "$OUT/fmnist_cnn_int8.qfm" "$OUT/fmnist_cnn_w4.qfm" "$log" "$correct" "$total" <<'EOF2'
import json, os, sys
model, q8, q4, w4json, correct, total = sys.argv[1:7]
f = os.path.getsize(model)
w4 = json.load(open(w4json))
print(f"{'model':34s} {'bytes':>10s} {'of float':>9s}")
for path in (model, q8, q4):
    s = os.path.getsize(path)
    print(f"{path:34s} {s:10d} {100.0 * s / f:8.1f}%")
print(f"4-bit weights / 8-bit activations: top-1 {100 * w4['top1_quant']:.2f}% "
      f"(float {100 * w4['top1_float']:.2f}%, agreement {100 * w4['agreement']:.2f}%)")
EOF2
