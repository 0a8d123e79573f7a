#!/usr/bin/env bash
# demo.sh BUILD - the showcase (`make demo`): one command from a trained float
# network to a small integer model that keeps to an accuracy budget.
#
# 1. Trains resnet8 on Fashion-MNIST with `qforge train --arch resnet8`
#    (3 epochs on the first 30,000 training images, 2 threads: about 89.6%
#    test top-1) into out/resnet8_fmnist.onnx, unless that file is there
#    already (delete it to train again).
# 2. `qforge compress` with --max-drop 0.5: check, int8 PTQ with each
#    calibrator, per-layer sensitivity, mixed-precision bits, verify, and
#    escalation if the drop is too large; HTML report in out/.
# 3. Runs the compressed model with the integer runtime (`qforge eval` on
#    the 10,000 test images) and times both models (`qforge bench`).
# 4. Prints accuracy, size and speed before and after, and the report path.
# Exit status: that of `qforge compress` when it misses the target (1), else 0.
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
QF="$BUILD/qforge"
OUT=out
MODEL="$OUT/resnet8_fmnist.onnx"
QMODEL="$OUT/resnet8_fmnist.qfm"
REPORT="$OUT/resnet8_compress.html"
THREADS=${QF_DEMO_THREADS:-2}

if [[ ! -x $QF ]]; then
  echo "demo: $QF not built (make BUILD=$BUILD all)" >&2
  exit 2
fi
mkdir -p "$OUT"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
t_start=$(date +%s)

echo "== 1. float model: resnet8 on Fashion-MNIST"
if [[ -f $MODEL ]]; then
  echo "reusing $MODEL (delete it to train again)"
else
  "$QF" train --arch resnet8 --data fashion-mnist --epochs 3 --limit 30000 --batch 64 --lr 0.05 \
    --threads "$THREADS" -o "$MODEL"
fi

echo
echo "== 2. qforge compress $MODEL --max-drop 0.5"
set +e
"$QF" compress "$MODEL" --data fashion-mnist --max-drop 0.5 --threads "$THREADS" \
  --report "$REPORT" -o "$QMODEL"
rc=$?
set -e
if [[ $rc -ne 0 ]]; then
  echo "demo: qforge compress did not meet the target (exit $rc); see $REPORT" >&2
  exit "$rc"
fi

echo
echo "== 3. integer runtime: qforge eval $QMODEL (10,000 test images)"
"$QF" eval "$QMODEL" --data fashion-mnist --json >"$T/eval.json"
"$PY" - "$T/eval.json" <<'EOF'
import json, sys
e = json.load(open(sys.argv[1]))
print(f"top-1 float {100 * e['top1_float']:.2f}%, integer {100 * e['top1_quant']:.2f}%, "
      f"agreement {100 * e['agreement']:.2f}%, output SQNR {e['output_sqnr_db']:.1f} dB")
EOF
echo
echo "== 4. speed: qforge bench (batch 1, 1 thread)"
"$QF" bench "$MODEL" --seconds 2 --json >"$T/bench_f.json"
"$QF" bench "$QMODEL" --seconds 2 --json >"$T/bench_q.json"

echo
echo "== summary"
"$PY" - "$MODEL" "$QMODEL" "$T/eval.json" "$T/bench_f.json" "$T/bench_q.json" <<'EOF'
import json, os, sys
model, qmodel, evj, bfj, bqj = sys.argv[1:6]
ev, bf, bq = (json.load(open(p)) for p in (evj, bfj, bqj))
fs, qs = os.path.getsize(model), os.path.getsize(qmodel)
print(f"{'':12s} {'top-1':>8s} {'bytes':>10s} {'latency':>10s}")
print(f"{'float ONNX':12s} {100 * ev['top1_float']:7.2f}% {fs:10d} {bf['median_ms']:8.3f}ms")
print(f"{'compressed':12s} {100 * ev['top1_quant']:7.2f}% {qs:10d} {bq['median_ms']:8.3f}ms")
print(f"drop {100 * (ev['top1_float'] - ev['top1_quant']):.2f} points on {ev['samples']} test "
      f"images; {fs / qs:.1f}x smaller; {bf['median_ms'] / bq['median_ms']:.2f}x the speed")
EOF
echo "report: $REPORT"
echo "demo took $(( $(date +%s) - t_start )) s"
