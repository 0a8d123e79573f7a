#!/usr/bin/env bash
# suite_train.sh BUILD - training in C end to end on Fashion-MNIST subsets
# (short runs: the full figures are measured by hand and reported in the
# closing notes):
#   - `qforge train --arch lenet`: learns (validation top-1 well above
#     chance after one short epoch), writes ONNX that ONNX Runtime runs with
#     the same outputs as qforge's float runtime;
#   - `qforge train --init`: fine-tuning an imported model keeps it working;
#   - `qforge distill`: a student learns from a teacher;
#   - `qforge qat`: 4-bit weights and activations (first/last layer 8-bit);
#     the frozen integer model's top-1 equals the fake-quantized model's
#     within 0.2 points on the 10,000 test images, and the exported QDQ model
#     runs in ONNX Runtime;
#   - bad input: missing data, unknown architecture, bad numbers: exit 2,
#     one line, no output file.
set -uo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
Q="$BUILD/qforge"
PY=/usr/bin/python3
pass=0
fail=0
calc() { awk "BEGIN { printf \"%.4f\", $1 }"; }
absdiff() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; printf "%.4f", d < 0 ? -d : d }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# first 256 test images for the ONNX Runtime comparisons
$PY - "$T/x.npy" <<'EOF'
import gzip, sys, numpy as np
with gzip.open('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz') as f:
    d = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
np.save(sys.argv[1], d[:256].astype(np.float32) / 255.0)
EOF
# max |a - b| / max |b| of two NPY files
relerr() { $PY -c "import numpy as np,sys; a,b=np.load(sys.argv[1]),np.load(sys.argv[2]); print(f'{float(np.abs(a-b).max()/max(np.abs(b).max(),1e-30)):.3g}')" "$1" "$2"; }
val_of() { sed -nE 's/^best validation top-1 ([0-9.]+)%.*/\1/p' "$1"; }

# ---- train a built-in architecture -------------------------------------------
# One epoch of 8,000 images (125 steps) at the default learning rate: over
# seeds 1-6 this reached 72.3-80.4% on an AVX2 machine. The 4,000-image
# run it replaced spread over 62-76% with the seed (float rounding differs
# with the CPU's BLAS kernels, so a CI machine is another draw of the same
# spread), too wide for a fixed threshold.
if "$Q" train --arch lenet --data fashion-mnist --epochs 1 --limit 8000 --val-limit 1000 \
  --batch 64 --seed 3 -o "$T/lenet.onnx" >"$T/train.log" 2>"$T/train.err"; then
  v=$(val_of "$T/train.log")
  if le 65 "$v"; then ok "train lenet: validation top-1 $v% after 8,000 samples"
  else bad "train lenet: validation top-1 $v% (expected >= 65)"; fi
  if "$Q" run "$T/lenet.onnx" --input "$T/x.npy" -o "$T/qf.npy" 2>"$T/e" &&
    node tests/node/ort_run.js "$T/lenet.onnx" "$T/x.npy" "$T/ort.npy" 2>>"$T/e"; then
    r=$(relerr "$T/qf.npy" "$T/ort.npy")
    if le "$r" 1e-4; then ok "trained lenet in ONNX Runtime: max rel err $r"
    else bad "trained lenet in ONNX Runtime: max rel err $r"; fi
  else bad "trained lenet does not run: $(tail -1 "$T/e")"; fi
else
  bad "train lenet failed: $(tail -2 "$T/train.err")"
fi

# ---- fine-tune it (--init) and distill a student from it ----------------------------
if [[ -f $T/lenet.onnx ]]; then
  if "$Q" train --init "$T/lenet.onnx" --data fashion-mnist --epochs 1 --limit 2000 \
    --val-limit 1000 -o "$T/tuned.onnx" >"$T/tune.log" 2>"$T/e"; then
    v=$(val_of "$T/tune.log")
    if le 65 "$v"; then ok "fine-tune (--init): validation top-1 $v%"
    else bad "fine-tune (--init): validation top-1 $v%"; fi
  else bad "fine-tune failed: $(tail -1 "$T/e")"; fi
  if "$Q" distill --teacher "$T/lenet.onnx" --arch lenet --data fashion-mnist --epochs 1 \
    --batch 64 --lr 0.05 --limit 4000 --val-limit 1000 -T 4 --alpha 0.7 -o "$T/student.onnx" >"$T/kd.log" 2>"$T/e"; then
    v=$(val_of "$T/kd.log")
    if le 60 "$v"; then ok "distill: student validation top-1 $v%"
    else bad "distill: student validation top-1 $v%"; fi
  else bad "distill failed: $(tail -1 "$T/e")"; fi
fi

# ---- gradual pruning with fine-tuning ------------------------------------------------
if [[ -f $T/lenet.onnx ]]; then
  if "$Q" prune "$T/lenet.onnx" --sparsity 0.8 --schedule gradual --epochs 1 --train-limit 3000 \
    --data fashion-mnist -o "$T/sparse.onnx" >"$T/prune.log" 2>"$T/e" &&
    "$Q" inspect "$T/sparse.onnx" --json >"$T/sp.json" &&
    "$Q" eval "$T/sparse.onnx" --data fashion-mnist --limit 1000 --json >"$T/spe.json" 2>/dev/null; then
    sp=$($PY -c "import json,sys; w=json.load(open(sys.argv[1]))['weights']; print(f\"{sum(x['zeros'] for x in w)/sum(x['values'] for x in w):.4f}\")" "$T/sp.json")
    acc=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['top1'])" "$T/spe.json")
    if le 0.79 "$sp" && le 0.6 "$acc"; then ok "gradual pruning + fine-tuning: sparsity $sp, top-1 $acc"
    else bad "gradual pruning + fine-tuning: sparsity $sp, top-1 $acc"; fi
  else bad "gradual pruning failed: $(tail -1 "$T/e")"; fi
fi

# ---- weight sharing with centroid fine-tuning ------------------------------------------
if [[ -f $T/lenet.onnx ]]; then
  if "$Q" cluster "$T/lenet.onnx" --bits 2 -q -o "$T/c2.onnx" &&
    "$Q" cluster "$T/lenet.onnx" --bits 2 --epochs 1 --train-limit 3000 --data fashion-mnist \
      -q -o "$T/c2f.onnx" >/dev/null &&
    "$Q" eval "$T/c2.onnx" --data fashion-mnist --limit 1000 --json >"$T/c2.json" 2>/dev/null &&
    "$Q" eval "$T/c2f.onnx" --data fashion-mnist --limit 1000 --json >"$T/c2f.json" 2>/dev/null; then
    a0=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['top1'])" "$T/c2.json")
    a1=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['top1'])" "$T/c2f.json")
    nd=$($PY -c "
import onnx, sys, numpy as np
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
ws = [numpy_helper.to_array(t) for t in m.graph.initializer if t.name.endswith('weight') and t.dims and len(t.dims) >= 2]
print(max(len(np.unique(w)) for w in ws))" "$T/c2f.onnx")
    if le "$a0" "$a1" && [[ $nd -le 4 ]]; then
      ok "cluster 2-bit: centroid fine-tuning $a0 -> $a1, at most $nd distinct weights per layer"
    else bad "cluster 2-bit: $a0 -> $a1, $nd distinct weights in a layer"; fi
  else bad "cluster failed"; fi
fi

# ---- QAT: 4-bit weights and activations, first and last layer 8-bit -------------------
if [[ -f $T/lenet.onnx ]]; then
  $PY - "$T/lenet.onnx" "$T/w4a4.json" <<'EOF'
import json, sys, onnx
names = [n.name for n in onnx.load(sys.argv[1]).graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
first, last = names[0], names[-1]
json.dump({"num_bits": {"default": 4, first: 8, last: 8},
           "act_bits": {"default": 4, first: 8, last: 8}}, open(sys.argv[2], "w"))
EOF
  if "$Q" qat "$T/lenet.onnx" --data fashion-mnist --config "$T/w4a4.json" --epochs 1 \
    --limit 3000 --calib-limit 500 -o "$T/qat.qfm" >"$T/qat.log" 2>"$T/e"; then
    fq=$(sed -nE 's/^fake-quant top-1 \(QAT\): +([0-9.]+)%.*/\1/p' "$T/qat.log")
    iq=$(sed -nE 's/^integer model top-1: +([0-9.]+)%.*/\1/p' "$T/qat.log")
    d=$(calc "$iq - $fq"); ad=$(absdiff "$iq" "$fq")
    if [[ -n $iq && -n $fq ]] && le "$ad" 0.2; then ok "qat w4a4: integer $iq% vs fake-quant $fq% (within 0.2 points)"
    else bad "qat w4a4: integer $iq% vs fake-quant $fq% differ by $d points"; fi
    if "$Q" export "$T/qat.qfm" -o "$T/qat.onnx" >/dev/null 2>"$T/e" &&
      "$Q" run "$T/qat.qfm" --input "$T/x.npy" -o "$T/qq.npy" 2>>"$T/e" &&
      node tests/node/ort_run.js "$T/qat.onnx" "$T/x.npy" "$T/qo.npy" 2>>"$T/e"; then
      same=$($PY -c "import numpy as np,sys; a,b=np.load(sys.argv[1]),np.load(sys.argv[2]); print(float((a.argmax(1)==b.argmax(1)).mean()))" "$T/qq.npy" "$T/qo.npy")
      if le 0.99 "$same"; then ok "qat model in ONNX Runtime: same top-1 class for $same of 256"
      else bad "qat model in ONNX Runtime: same top-1 class for only $same"; fi
    else bad "qat export/run failed: $(tail -1 "$T/e")"; fi
  else
    bad "qat failed: $(tail -2 "$T/e")"
  fi
  # --reduce-range trains and freezes 7-bit weights: every int8 weight of the
  # exported model within +-63 (8-bit ones reach +-127)
  if "$Q" qat "$T/lenet.onnx" --data fashion-mnist --reduce-range --epochs 1 --limit 500 \
    --calib-limit 200 -o "$T/qat7.qfm" >"$T/qat7.log" 2>"$T/e" &&
    "$Q" export "$T/qat7.qfm" -o "$T/qat7.onnx" >/dev/null 2>>"$T/e"; then
    r=$($PY - "$T/qat7.onnx" <<'EOF'
import sys, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
w = [numpy_helper.to_array(t) for t in m.graph.initializer if t.data_type == onnx.TensorProto.INT8]
print(max((int(abs(a.astype(int)).max()) for a in w), default=-1), sum(a.size > 1 for a in w))
EOF
    )
    if [[ ${r%% *} -ge 1 && ${r%% *} -le 63 && ${r##* } -ge 3 ]]; then ok "qat --reduce-range: int8 weights within +-${r%% *}"
    else bad "qat --reduce-range: largest |weight| and weight tensors: $r"; fi
  else
    bad "qat --reduce-range failed: $(tail -2 "$T/e")"
  fi
fi

# ---- bad input -------------------------------------------------------------------
expect_2() { # description, then the command; exit 2, one stderr line, no output file
  local what=$1; shift
  rm -f "$T/bad.onnx"
  "$@" >/dev/null 2>"$T/err"
  local rc=$? lines
  lines=$(wc -l <"$T/err")
  if [[ $rc -eq 2 && $lines -eq 1 && ! -e $T/bad.onnx ]]; then ok "bad input: $what -> $(cat "$T/err")"
  else bad "bad input: $what: exit $rc, $lines lines: $(head -3 "$T/err")"; fi
}
expect_2 "unknown architecture" "$Q" train --arch resnet9000 --data fashion-mnist -o "$T/bad.onnx"
expect_2 "missing data" "$Q" train --arch lenet --data "$T/nothing" -o "$T/bad.onnx"
expect_2 "epochs 0" "$Q" train --arch lenet --data fashion-mnist --epochs 0 -o "$T/bad.onnx"
expect_2 "both --arch and --init" "$Q" train --arch lenet --init x.onnx --data fashion-mnist -o "$T/bad.onnx"
expect_2 "distill without teacher" "$Q" distill --arch lenet --data fashion-mnist -o "$T/bad.onnx"
expect_2 "wrong input size" "$Q" train --arch alexnet --data fashion-mnist --limit 64 -o "$T/bad.onnx"

echo "suite_train: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
