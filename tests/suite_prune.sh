#!/usr/bin/env bash
# suite_prune.sh BUILD - `qforge prune` and `qforge cluster` end to end.
#
# Makes small torchvision-like models with /usr/bin/python3 + torch
# (tests/fixtures/make_prune_fixtures.py: ResNet-8 with BatchNorm kept,
# mobilenet_v2 x0.35, a Concat/depthwise/Flatten->Linear model, and one with
# a channel-mixing Reshape) into BUILD/suite_prune (cached), prunes them in
# several ways, and checks for each result:
#  - ONNX's own checker accepts the exported file, and the pruning is real
#    (weight zeros for magnitude/N:M, at most 2^B values per layer for
#    cluster, fewer MACs for --structured);
#  - ONNX Runtime (tests/node/ort_run.js, an independent implementation)
#    runs it and its output equals qforge's float runtime's output
#    (tests/tools/npycompare.py, max_rel_err <= 1e-4).
# Bad inputs must exit 2, print one line, and leave no output file.
# Ends with "suite_prune: N passed, N failed".
set -uo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
Q="$BUILD/qforge"
W="$BUILD/suite_prune"
TOL=1e-4
mkdir -p "$W"
pass=0; fail=0
ok() { echo "$1: ok"; pass=$((pass + 1)); }
bad() { echo "$1: FAIL $2"; fail=$((fail + 1)); }

fail_all() {
  echo "suite_prune: $1"
  echo "suite_prune: 0 passed, 1 failed"
  exit 1
}
[[ -x "$Q" ]] || fail_all "$Q not built (make BUILD=$BUILD all)"
# importing torch alone takes seconds: only when a fixture is missing
for f in resnet8.onnx mobilenet.onnx mixer.onnx mixing.onnx in.npy data_x.npy data_y.npy; do
  [[ -f "$W/$f" ]] && continue
  OMP_NUM_THREADS=2 "$PY" tests/fixtures/make_prune_fixtures.py "$W" >"$W/fixtures.log" 2>&1 ||
    fail_all "fixture export failed: $(tail -1 "$W/fixtures.log")"
  break
done
have_ort=1
command -v node >/dev/null && [[ -d tests/node/node_modules/onnxruntime-node ]] || have_ort=0

# check_onnx FILE KIND ARG: ONNX checker + the pruning is visible in the weights.
check_onnx() {
  "$PY" - "$@" <<'EOF'
import sys
import numpy as np
import onnx
from onnx import numpy_helper
path, kind, arg = sys.argv[1], sys.argv[2], sys.argv[3]
m = onnx.load(path)
onnx.checker.check_model(m)
inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
ws = [inits[n.input[1]] for n in m.graph.node
      if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1 and n.input[1] in inits]
if kind == "zeros":  # overall weight sparsity at least arg
    z = sum(int((w == 0).sum()) for w in ws) / sum(w.size for w in ws)
    if z < float(arg):
        sys.exit(f"weight sparsity {z:.3f} < {arg}")
elif kind == "unique":  # at most arg distinct values per layer
    for w in ws:
        if len(np.unique(w)) > int(arg):
            sys.exit(f"a layer has {len(np.unique(w))} distinct values > {arg}")
elif kind == "nm":  # 2:4 along the input-channel axis of every 4-divisible conv
    for w in ws:
        if w.ndim == 4 and w.shape[1] % 4 == 0 and w.shape[1] > 1:
            g = np.moveaxis(w, 1, -1).reshape(-1, 4)
            if not ((g != 0).sum(axis=1) <= 2).all():
                sys.exit("a conv group of 4 keeps more than 2")
EOF
}

# case NAME MODEL KIND ARG -- prune args...: prune, check, compare with ORT.
run_case() {
  local name=$1 model=$2 kind=$3 arg=$4; shift 5
  local out="$W/$name.onnx" log="$W/$name.log"
  rm -f "$out"
  if ! "$Q" "$@" "$W/$model.onnx" -o "$out" >"$log" 2>&1; then
    bad "$name" "qforge: $(tail -2 "$log" | tr '\n' ' ')"; return
  fi
  local msg
  if ! msg=$(check_onnx "$out" "$kind" "$arg" 2>&1); then
    bad "$name" "$(echo "$msg" | tail -1)"; return
  fi
  if [[ $kind == macs ]]; then
    local line a b
    line=$(grep -E '^MACs: ' "$log")
    a=$(echo "$line" | awk '{print $2}'); b=$(echo "$line" | awk '{print $4}')
    if [[ -z $a || -z $b ]] || ((b * 100 > a * arg)); then
      bad "$name" "MACs not reduced enough: '$line' (want <= $arg%)"; return
    fi
  fi
  if ! "$Q" run "$out" --input "$W/in.npy" -o "$W/$name.qf.npy" >>"$log" 2>&1; then
    bad "$name" "qforge run: $(tail -1 "$log")"; return
  fi
  if [[ $have_ort -eq 0 ]]; then
    bad "$name" "onnxruntime-node missing (cd tests/node && npm install --ignore-scripts)"
    return
  fi
  if ! node tests/node/ort_run.js "$out" "$W/in.npy" "$W/$name.ort.npy" >>"$log" 2>&1; then
    bad "$name" "onnxruntime: $(tail -1 "$log")"; return
  fi
  if "$PY" tests/tools/npycompare.py "$W/$name.qf.npy" "$W/$name.ort.npy" --tol "$TOL" \
      --label "$name" >"$W/$name.cmp" 2>&1; then
    ok "$name ($(grep -oE 'max_rel_err=[^ ]+' "$W/$name.cmp"))"
  else
    bad "$name" "$(cat "$W/$name.cmp")"
  fi
}

run_case resnet8_structured_l1 resnet8 macs 45 -- prune --sparsity 0.5 --structured
run_case resnet8_structured_fpgm resnet8 macs 70 -- prune --sparsity 0.3 --structured \
  --criterion fpgm
run_case mobilenet_structured_l2 mobilenet macs 60 -- prune --sparsity 0.4 --structured \
  --criterion l2
run_case mixer_structured mixer macs 60 -- prune --sparsity 0.5 --structured
# skip-last: with random weights a global threshold would empty the small-init classifier
run_case mobilenet_global mobilenet zeros 0.66 -- prune --sparsity 0.7 --global --skip-first \
  --skip-last
run_case resnet8_layerwise resnet8 zeros 0.79 -- prune --sparsity 0.8
run_case resnet8_nm24 resnet8 nm 0 -- prune --nm 2:4
run_case resnet8_auto resnet8 zeros 0.59 -- prune --sparsity 0.6 --auto \
  --data "$W/data_x.npy" --labels "$W/data_y.npy" --limit 16
run_case resnet8_structured_auto resnet8 macs 90 -- prune --sparsity 0.4 --structured --auto \
  --data "$W/data_x.npy" --labels "$W/data_y.npy" --limit 8
run_case mixer_cluster4 mixer unique 16 -- cluster --bits 4
# prune then cluster: zeros survive as their own cluster
if "$Q" prune "$W/resnet8.onnx" --sparsity 0.8 -q -o "$W/r8_sparse.onnx" >/dev/null 2>&1; then
  cp "$W/r8_sparse.onnx" "$W/r8s.onnx"
  run_case resnet8_prune_cluster r8s zeros 0.79 -- cluster --bits 3
else
  bad resnet8_prune_cluster "prune failed"
fi

# Bad input: exit 2, a one-line message containing WANT, no output file.
expect_bad() { # name want args...
  local name=$1 want=$2; shift 2
  local out="$W/bad_$name.onnx"
  rm -f "$out"
  "$Q" "$@" -o "$out" >"$W/bad_$name.log" 2>&1
  local rc=$?
  local lines
  lines=$(grep -c . "$W/bad_$name.log")
  if [[ $rc -ne 2 ]]; then bad "bad_$name" "exit $rc, want 2"
  elif [[ -e $out ]]; then bad "bad_$name" "an output file was written"
  elif ! grep -q -- "$want" "$W/bad_$name.log"; then
    bad "bad_$name" "message lacks '$want': $(head -1 "$W/bad_$name.log")"
  elif [[ $lines -gt 2 ]]; then bad "bad_$name" "$lines lines of error output"
  else ok "bad_$name"; fi
}
M="$W/resnet8.onnx"
expect_bad sparsity_one "sparsity" prune "$M" --sparsity 1.0
expect_bad sparsity_negative "sparsity" prune "$M" --sparsity -0.1
expect_bad sparsity_text "sparsity" prune "$M" --sparsity lots
expect_bad no_sparsity "sparsity" prune "$M"
expect_bad epochs "needs --data" prune "$M" --sparsity 0.5 --epochs 3
expect_bad schedule "needs --data" prune "$M" --sparsity 0.5 --schedule gradual
expect_bad nm_structured "--nm" prune "$M" --nm 2:4 --structured
expect_bad nm_malformed "N:M" prune "$M" --nm 5:4
expect_bad criterion "criterion" prune "$M" --sparsity 0.5 --structured --criterion l3
expect_bad auto_without_data "--data" prune "$M" --sparsity 0.5 --auto
expect_bad channel_mixing_reshape "/Reshape" prune "$W/mixing.onnx" --sparsity 0.5 --structured
expect_bad missing_model "nope.onnx" prune "$W/nope.onnx" --sparsity 0.5
expect_bad cluster_bits_zero "bits" cluster "$M" --bits 0
expect_bad cluster_bits_nine "bits" cluster "$M" --bits 9

echo "suite_prune: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
