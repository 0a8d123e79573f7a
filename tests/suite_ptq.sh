#!/usr/bin/env bash
# suite_ptq.sh BUILD - post-training quantization end to end on Fashion-MNIST:
# the small CNN and the small ResNet (trained by tests/fixtures, cached in
# BUILD/fixtures), quantized with 1,000 training images, checked for
#   - int8 (per-channel weights): top-1 within 0.15 points of float
#   - 4-bit weights / 8-bit activations (best calibrator, GPTQ rounding):
#     within 1.0 point
#   - 16-bit activations on the first/last layer; asymmetric 4-bit weights
#     (plain min/max ranges, GPTQ rounding)
#   - qfm size <= 26% (int8) and <= 14% (4-bit) of the float ONNX file
#   - (reported, not asserted) quantize time, calibration included
#   - the exported QDQ model in ONNX Runtime within 1 step of qforge (>= 99.9%)
#   - bad input: wrong-shape calibration data, empty data, unknown layer,
#     bits out of range, corrupted qfm: exit 2, one line, no file left.
# By default (make check) the fixtures are the --quick variants of the two
# models (1 epoch on 10,000 training images: about a minute of training) and
# accuracy is measured on the first QF_PTQ_EVAL=2000 test images; the same
# bounds hold. QF_PTQ_FULL=1 uses the fully trained models (about 5 minutes
# of training, cached) and QF_PTQ_EVAL=10000 the whole test set: the figures
# reported in the closing notes come from that run.
set -uo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
Q="$BUILD/qforge"
FIX="$BUILD/fixtures"
EVAL_N=${QF_PTQ_EVAL:-2000}
if [[ ${QF_PTQ_FULL:-0} == 1 ]]; then FIXARGS=(); SUFFIX=""; else FIXARGS=(--quick); SUFFIX=_quick; fi
PY=/usr/bin/python3
pass=0
fail=0
# float arithmetic and comparisons without bc
calc() { awk "BEGIN { printf \"%.4f\", $1 }"; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

bash tests/fixtures/make_ptq_fixtures.sh "${FIXARGS[@]}" "$FIX" >"$T/fixtures.log" 2>&1 ||
  { cat "$T/fixtures.log"; bad "fixtures"; echo "suite_ptq: $pass passed, $fail failed"; exit 1; }

# top-1 float/quant from `qforge eval M.qfm --json`
eval_json() { "$Q" eval "$1" --data fashion-mnist --limit "$EVAL_N" --json 2>/dev/null; }
field() { $PY -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

# An NPY batch of the first 256 test images for the ONNX Runtime comparison
$PY - "$T/x.npy" <<'EOF'
import gzip, sys, numpy as np
with gzip.open('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz') as f:
    d = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
np.save(sys.argv[1], d[:256].astype(np.float32) / 255.0)
EOF

echo '{"num_bits": 4, "symmetric": false, "calibration": "minmax", "rounding": "gptq"}' >"$T/asym.json"

for model in cnn resnet; do
  onnx="$FIX/fmnist_${model}${SUFFIX}.onnx"
  [[ -f $onnx ]] || { bad "$model: fixture $onnx missing"; continue; }
  # 16-bit activations on the first and the last layer, the usual sensitive ones
  $PY - "$onnx" "$T/a16.json" <<'EOF'
import json, sys, onnx
names = [n.name for n in onnx.load(sys.argv[1]).graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
json.dump({"act_bits": {"default": 8, names[0]: 16, names[-1]: 16}}, open(sys.argv[2], "w"))
EOF
  fsize=$(stat -c %s "$onnx")
  # name, extra quantize flags, max drop (points), max size ratio
  # a16: 16-bit activations on the first and last layer (int16 kernels where
  # the int32 accumulator allows it, else that layer stays float)
  # w4asym: asymmetric 4-bit weights (per-channel zero points), plain min/max
  # w4 and w4asym round with GPTQ: with nearest rounding the quick ResNet
  # trained on an AVX2 machine lost 1.15 (w4) and 3.70 (w4asym) points on
  # 2,000 images, 1.03 and 2.72 on all 10,000 (agreement with float 92%);
  # GPTQ: 0.00 and 0.20 (agreement 97%)
  for cfg in "int8|--method minmax|0.15|0.26" "w4|--bits 4 --method mse --rounding gptq|1.0|0.14" \
    "a16|--config $T/a16.json|0.15|0.27" "w4asym|--config $T/asym.json|1.0|0.14"; do
    IFS='|' read -r name flags maxdrop maxratio <<<"$cfg"
    out="$T/${model}_$name.qfm"
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    if ! "$Q" quantize "$onnx" --calib fashion-mnist --limit 1000 $flags -o "$out" --json \
      >"$T/q.json" 2>"$T/q.err"; then
      bad "$model $name: quantize failed: $(cat "$T/q.err")"
      continue
    fi
    secs=$(calc "$(date +%s.%N) - $t0")
    # a measurement, not a test (timings belong to benchmarks): the target is
    # under 10 s on this machine, and sanitizer builds are several times slower
    echo "time $model $name: quantize (calibration included) ${secs}s"
    qsize=$(stat -c %s "$out")
    ratio=$(calc "$qsize / $fsize")
    if le "$ratio" "$maxratio"; then ok "$model $name: size ratio $ratio"
    else bad "$model $name: size ratio $ratio > $maxratio ($qsize / $fsize bytes)"; fi
    if ! eval_json "$out" >"$T/e.json"; then bad "$model $name: eval failed"; continue; fi
    tf=$(field "$T/e.json" top1_float)
    tq=$(field "$T/e.json" top1_quant)
    drop=$(calc "($tf - $tq) * 100")
    msg="$model $name: float $(calc "$tf*100")% quant $(calc "$tq*100")% drop $drop points on $EVAL_N images"
    if le "$drop" "$maxdrop"; then ok "$msg"; else bad "$msg (limit $maxdrop)"; fi
    # ONNX Runtime runs the exported QDQ model within one output step of qforge
    if "$Q" export "$out" -o "$T/qdq.onnx" >/dev/null 2>"$T/x.err" &&
      "$Q" run "$out" --input "$T/x.npy" -o "$T/qf.npy" 2>>"$T/x.err" &&
      node tests/node/ort_run.js "$T/qdq.onnx" "$T/x.npy" "$T/ort.npy" 2>>"$T/x.err"; then
      step=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['layers'][-1]['scale'])" "$T/q.json")
      # a 16-bit output's step is 256x finer than the 8-bit layers before it
      # can agree to: compare in steps of the 8-bit quantization of that range
      [[ $name == a16 ]] && step=$(calc "$step * 256")
      res=$($PY - "$T/qf.npy" "$T/ort.npy" "$step" <<'EOF'
import sys, numpy as np
a, b, s = np.load(sys.argv[1]), np.load(sys.argv[2]), float(sys.argv[3])
d = np.abs(a - b) / s
print(f"{(d <= 1.0001).mean():.5f} {d.max():.2f}")
EOF
)
      read -r frac maxs <<<"$res"
      if le 0.999 "$frac"; then ok "$model $name: ONNX Runtime agrees: $frac within 1 step (max $maxs)"
      else bad "$model $name: ONNX Runtime agreement $frac within 1 step (max $maxs)"; fi
    else
      bad "$model $name: QDQ export/run failed: $(tail -2 "$T/x.err")"
    fi
  done
done

# ---- compressed storage -------------------------------------------------------
# --compress stores weights sparse/zstd-coded: a smaller file that decodes to
# the same model (outputs bit for bit), and inspect shows the storage
onnx="$FIX/fmnist_cnn${SUFFIX}.onnx"
if "$Q" quantize "$onnx" --calib fashion-mnist --limit 200 --bits 4 -o "$T/raw4.qfm" -q &&
  "$Q" quantize "$onnx" --calib fashion-mnist --limit 200 --bits 4 --compress -o "$T/z4.qfm" -q &&
  "$Q" run "$T/raw4.qfm" --input "$T/x.npy" -o "$T/raw4.npy" &&
  "$Q" run "$T/z4.qfm" --input "$T/x.npy" -o "$T/z4.npy" &&
  "$Q" inspect "$T/z4.qfm" --json >"$T/z4.json"; then
  rs=$(stat -c %s "$T/raw4.qfm"); zs=$(stat -c %s "$T/z4.qfm")
  if ((zs < rs)) && cmp -s "$T/raw4.npy" "$T/z4.npy"; then
    ok "compressed qfm: $zs bytes vs $rs raw, identical outputs"
  else bad "compressed qfm: $zs bytes vs $rs raw, outputs $(cmp -s "$T/raw4.npy" "$T/z4.npy" && echo same || echo differ)"; fi
  enc=$($PY -c "import json,sys; print(' '.join(sorted({w['storage'] for w in json.load(open(sys.argv[1]))['weights']})))" "$T/z4.json")
  if [[ $enc == *zstd* ]]; then ok "inspect shows weight storage: $enc"; else bad "inspect storage: '$enc'"; fi
else
  bad "compressed qfm: a command failed"
fi

# ---- bad input --------------------------------------------------------------
onnx="$FIX/fmnist_cnn${SUFFIX}.onnx"
expect_2() { # description, then the command; checks exit 2, one stderr line, no output
  local what=$1; shift
  rm -f "$T/bad.qfm"
  "$@" >/dev/null 2>"$T/err"
  local rc=$?
  local lines
  lines=$(wc -l <"$T/err")
  if [[ $rc -eq 2 && $lines -eq 1 && ! -e $T/bad.qfm ]] && ! ls "$T"/bad.qfm.tmp* >/dev/null 2>&1; then
    ok "bad input: $what -> $(cat "$T/err")"
  else
    bad "bad input: $what: exit $rc, $lines stderr lines: $(head -3 "$T/err")"
  fi
}
$PY -c "import numpy as np; np.save('$T/wrong.npy', np.zeros((8,3,8,8), np.float32)); np.save('$T/empty.npy', np.zeros((0,1,28,28), np.float32)); np.save('$T/lab.npy', np.zeros((8,), np.int32)); np.save('$T/lab0.npy', np.zeros((0,), np.int32))"
expect_2 "calibration data of the wrong shape" "$Q" quantize "$onnx" --calib "$T/wrong.npy" --labels "$T/lab.npy" -o "$T/bad.qfm"
expect_2 "empty calibration data" "$Q" quantize "$onnx" --calib "$T/empty.npy" --labels "$T/lab0.npy" -o "$T/bad.qfm"
echo '{"num_bits": {"conv9": 4}}' >"$T/c.json"
expect_2 "config naming a missing layer" "$Q" quantize "$onnx" --calib fashion-mnist --limit 16 --config "$T/c.json" -o "$T/bad.qfm"
echo '{"num_bits": 12}' >"$T/c2.json"
expect_2 "config bits out of range" "$Q" quantize "$onnx" --calib fashion-mnist --limit 16 --config "$T/c2.json" -o "$T/bad.qfm"
expect_2 "--bits 9" "$Q" quantize "$onnx" --calib fashion-mnist --limit 16 --bits 9 -o "$T/bad.qfm"
"$Q" quantize "$onnx" --calib fashion-mnist --limit 16 -o "$T/good.qfm" -q
head -c 3000 "$T/good.qfm" >"$T/trunc.qfm"
expect_2 "truncated qfm (eval)" "$Q" eval "$T/trunc.qfm" --data fashion-mnist --limit 10
expect_2 "truncated qfm (export)" "$Q" export "$T/trunc.qfm" -o "$T/bad.qfm"

echo "suite_ptq: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
