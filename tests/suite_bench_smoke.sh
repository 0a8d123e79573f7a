#!/usr/bin/env bash
# suite_bench_smoke.sh - smoke test of `qforge bench` and of the `make bench`
# harness (bench/run.sh) on tiny models. No timing assertions: the checks are
# on what the numbers must satisfy whatever the machine (counts, order of the
# percentiles, throughput = batch / median, shapes, exit codes).
# Usage: bash tests/suite_bench_smoke.sh BUILD
set -uo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
QF=$PWD/$BUILD/qforge
PY=/usr/bin/python3
pass=0
fail=0
T=$(mktemp -d /tmp/qf_suite_bench.XXXXXX)
trap 'rm -rf "$T"' EXIT

ok() { pass=$((pass + 1)); echo "ok $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1: $2"; }

# A 2-layer MLP with a dynamic batch: X[N,16] -> MatMul(16x32) -> Relu ->
# MatMul(32x4) = Y[N,4]; plus a model with a second dynamic axis.
"$PY" - "$T" <<'EOF'
import sys
import numpy as np
import onnx
from onnx import helper, TensorProto, numpy_helper
d = sys.argv[1]
rng = np.random.default_rng(0)
w1 = numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32), "w1")
w2 = numpy_helper.from_array(rng.standard_normal((32, 4)).astype(np.float32), "w2")
nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
         helper.make_node("Relu", ["h"], ["r"], name="relu"),
         helper.make_node("MatMul", ["r", "w2"], ["y"], name="mm2")]
def save(name, xdims, ydims):
    g = helper.make_graph(nodes, name,
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, xdims)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ydims)],
                          [w1, w2])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(m)
    onnx.save(m, f"{d}/{name}.onnx")
save("mlp", ["N", 16], ["N", 4])
save("mlp_dyn", ["N", "K", 16], ["N", "K", 4])
EOF

# check_json NAME FILE BATCH ITERS: the fields and their invariants.
check_json() {
  local name=$1 file=$2 batch=$3 iters=$4 msg
  if msg=$("$PY" - "$file" "$batch" "$iters" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
batch, iters = int(sys.argv[2]), int(sys.argv[3])
errs = []
if r["batch"] != batch: errs.append(f"batch {r['batch']} != {batch}")
if iters and r["iters"] != iters: errs.append(f"iters {r['iters']} != {iters}")
if r["iters"] < 1: errs.append("no timed runs")
if r["inputs"][0]["shape"][0] != batch: errs.append(f"input shape {r['inputs'][0]['shape']}")
if not (0 < r["min_ms"] <= r["p10_ms"] <= r["median_ms"] <= r["p90_ms"] <= r["max_ms"]):
    errs.append("percentiles out of order")
if abs(r["items_per_s"] - batch * 1e3 / r["median_ms"]) > 1e-3 * r["items_per_s"] + 1e-3:
    errs.append(f"items/s {r['items_per_s']} != batch / median")
if "peak_rss_bytes" in r and not r["peak_rss_bytes"] > 0: errs.append("peak RSS not positive")
if "arena_bytes" in r and r["arena_bytes"] < 0: errs.append("negative arena")
print("; ".join(errs))
sys.exit(1 if errs else 0)
EOF
  ); then ok "$name"; else bad "$name" "$msg"; fi
}

# ---- qforge bench -----------------------------------------------------------
if "$QF" bench "$T/mlp.onnx" --batch 4 --iters 7 --warmup 1 --json >"$T/b.json" 2>"$T/err"; then
  check_json "bench json (batch 4, 7 iters)" "$T/b.json" 4 7
  # the arena must at least hold the hidden activation h (4 x 32 floats)
  arena=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["arena_bytes"])' \
    "$T/b.json")
  if ((arena >= 4 * 32 * 4)); then ok "arena holds the hidden layer"; else
    bad "arena holds the hidden layer" "arena_bytes $arena < 512"; fi
else
  bad "bench json" "$(cat "$T/err")"
fi
if "$QF" bench "$T/mlp.onnx" --seconds 0.2 --warmup 0 --json >"$T/s.json" 2>"$T/err"; then
  check_json "bench --seconds, no warm-up" "$T/s.json" 1 0
else
  bad "bench --seconds" "$(cat "$T/err")"
fi
if "$QF" bench "$T/mlp.onnx" --batch 3 --iters 3 --threads 2 >"$T/h.txt" 2>"$T/err" &&
  grep -q '^latency *median [0-9.]* ms' "$T/h.txt" && grep -q '^throughput' "$T/h.txt" &&
  grep -q 'x \[3, 16\] float32' "$T/h.txt"; then
  ok "bench table"
else
  bad "bench table" "$(cat "$T/h.txt" "$T/err")"
fi
# --profile: a second JSON object whose nodes are exactly the graph's three,
# with shares summing to 100%
if "$QF" bench "$T/mlp.onnx" --batch 2 --iters 3 --json --profile >"$T/p.json" 2>"$T/err" &&
  msg=$("$PY" - "$T/p.json" <<'EOF'
import json, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
errs = []
if len(lines) != 2: errs.append(f"{len(lines)} JSON lines, want 2")
else:
    p = json.loads(lines[1])
    names = sorted(n["node"] for n in p["nodes"])
    if names != ["mm1", "mm2", "relu"]: errs.append(f"nodes {names}")
    if p["profile_runs"] < 3: errs.append("fewer than 3 profiled runs")
    tot = sum(n["percent"] for n in p["nodes"])
    if abs(tot - 100) > 0.5: errs.append(f"shares sum to {tot}")
    if sorted(o["op"] for o in p["ops"]) != ["MatMul", "Relu"]: errs.append(f"ops {p['ops']}")
print("; ".join(errs)); sys.exit(1 if errs else 0)
EOF
  ); then ok "bench --profile"; else bad "bench --profile" "${msg:-$(cat "$T/err")}"; fi
# --profile names each integer layer's kernel: the quantized MLP (symmetric,
# asymmetric 8-bit and 7-bit weights, --reduce-range) runs x86 or portable
# kernels, never the reference; quantize counts the asymmetric layers whose
# w - zero_point leave int8 (random 8-bit ones do), and exactly those run the
# portable kernels where the CPU has x86 ones; with QF_ISA=scalar every layer
# runs portable. --reduce-range keeps every weight within +-63, so quantize
# counts no layer that could saturate AVX2's vpmaddubsw (8-bit symmetric
# ones can: both, and run the sign form with QF_ISA=avx2), and with
# QF_ISA=avx2 both --reduce-range layers run plain vpmaddubsw
# ("x86 avx2", not "split" or "sign")
"$PY" -c "import numpy as np, sys; r = np.random.default_rng(1); np.save(sys.argv[1] + '/cal.npy', r.standard_normal((64, 16)).astype(np.float32)); np.save(sys.argv[1] + '/lab.npy', np.zeros(64, np.int64))" "$T"
echo '{"symmetric": false}' >"$T/asym.json"
echo '{"symmetric": false, "num_bits": 7}' >"$T/asym7.json"
x86=0; grep -qw avx2 /proc/cpuinfo && x86=1
isas="default scalar"; ((x86)) && isas+=" avx2"
for variant in sym asym asym7 rr; do
  cfg=()
  [[ $variant == asym* ]] && cfg=(--config "$T/$variant.json")
  [[ $variant == rr ]] && cfg=(--reduce-range)
  if ! "$QF" quantize "$T/mlp.onnx" --calib "$T/cal.npy" --labels "$T/lab.npy" "${cfg[@]}" \
      -o "$T/mlp_$variant.qfm" --json >"$T/q.json" 2>"$T/err"; then
    bad "quantize the MLP ($variant)" "$(cat "$T/err")"
    continue
  fi
  for isa in $isas; do
    env=(); [[ $isa != default ]] && env=(QF_ISA=$isa)
    if env "${env[@]}" "$QF" bench "$T/mlp_$variant.qfm" --iters 2 --json --profile >"$T/k.json" 2>"$T/err" &&
      msg=$("$PY" - "$T/k.json" "$T/q.json" "$variant" "$isa" "$x86" <<'EOF'
import json, sys
p = json.loads([l for l in open(sys.argv[1]).read().splitlines() if l.strip()][1])
q = json.load(open(sys.argv[2]))
wide, avx2_wide = q["asym_wide_layers"], q["avx2_wide_layers"]
variant, isa, x86 = sys.argv[3], sys.argv[4], sys.argv[5] == "1"
ks = [n.get("kernel") for n in p["nodes"] if n["op"] == "QGemm"]
errs = []
if variant == "asym" and wide != 2: errs.append(f"asym_wide_layers {wide}, want 2")
if variant != "asym" and wide != 0: errs.append(f"asym_wide_layers {wide}, want 0")
want_a = {"sym": 2, "asym": 2, "rr": 0}.get(variant)
if want_a is not None and avx2_wide != want_a:
    errs.append(f"avx2_wide_layers {avx2_wide}, want {want_a}")
avx2 = {"x86 avx2", "x86 avx2 split", "x86 avx2 sign", "x86 avx2 16-bit"}
ok = {"scalar": {"portable"}, "avx2": {"portable"} | avx2}.get(
    isa, {"portable", "x86 avx512vnni"} | avx2)
if len(ks) != 2 or not all(k in ok for k in ks): errs.append(f"QGemm kernels {ks}")
elif isa != "scalar" and x86 and ks.count("portable") != wide:
    errs.append(f"QGemm kernels {ks} with {wide} wide layers")
elif isa == "avx2" and variant == "rr" and ks != ["x86 avx2"] * 2:
    errs.append(f"QGemm kernels {ks} with --reduce-range, want plain x86 avx2")
elif isa == "avx2" and variant == "sym" and ks != ["x86 avx2 sign"] * 2:
    errs.append(f"QGemm kernels {ks}: these 8-bit weights saturate vpmaddubsw, want the sign form")
print("; ".join(errs)); sys.exit(1 if errs else 0)
EOF
      ); then ok "bench --profile kernels ($variant, $isa)"; else bad "bench --profile kernels ($variant, $isa)" "${msg:-$(cat "$T/err")}"; fi
  done
done
# bad usage and bad input: exit 2 with one stderr line
expect_2() {
  local name=$1; shift
  "$QF" bench "$@" >/dev/null 2>"$T/err"
  local rc=$?
  if [[ $rc == 2 && $(wc -l <"$T/err") == 1 ]] && grep -q '^qforge: ' "$T/err"; then
    ok "$name"
  else
    bad "$name" "rc $rc, stderr: $(cat "$T/err")"
  fi
}
expect_2 "missing model" "$T/none.onnx"
expect_2 "--iters with --seconds" "$T/mlp.onnx" --iters 2 --seconds 1
expect_2 "bad --seconds" "$T/mlp.onnx" --seconds -1
expect_2 "bad --batch" "$T/mlp.onnx" --batch 0
expect_2 "dynamic axis 1" "$T/mlp_dyn.onnx"

# ---- the harness: one tiny model through bench/run.sh ---------------------------
if [[ ! -d tests/node/node_modules/onnxruntime-node ]]; then
  echo "skip harness: onnxruntime-node is not installed in tests/node"
elif ! "$PY" -c 'import torch, torchvision' 2>/dev/null; then
  echo "skip harness: /usr/bin/python3 lacks torch/torchvision"
else
  if BUILD=$BUILD BENCH_NO_BUILD=1 BENCH_DIR="$T/bench" BENCH_REPORT="$T/B.md" \
    BENCH_MODELS=fmnist_cnn BENCH_BATCHES="1 2" BENCH_THREADS=1 BENCH_REPS=1 \
    BENCH_SECONDS=0.05 BENCH_R7=1 BENCH_R7_THREADS=1 bash bench/run.sh >"$T/run.log" 2>&1; then
    ok "bench/run.sh exits 0"
  else
    bad "bench/run.sh exits 0" "$(tail -5 "$T/run.log")"
  fi
  # 2 batches x 1 thread x (4 engines + the two int8 ones on the 7-bit model),
  # all measured
  n=$(grep -c '"result"' "$T/bench/results.jsonl" 2>/dev/null)
  if [[ $n == 12 ]]; then ok "harness: 12 measurements"; else
    bad "harness: 12 measurements" "$n results; $(grep -h error "$T/bench/results.jsonl")"; fi
  # the 7-bit model really has 7-bit weights within +-63
  if "$PY" - "$T/bench/fmnist_cnn.r7.qdq.onnx" <<'EOF'
import sys, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
w = [numpy_helper.to_array(t) for t in m.graph.initializer if t.data_type == onnx.TensorProto.INT8]
sys.exit(0 if w and all(abs(int(a.min())) <= 63 and int(a.max()) <= 63 for a in w) else 1)
EOF
  then ok "harness: 7-bit model"; else bad "harness: 7-bit model" "weights beyond +-63"; fi
  row7='^\| fmnist_cnn \| 2 \| 1 \|( [0-9.]+ ms · [0-9.]+/s \|){3} [0-9.]+x \| [0-9.]+x \|$'
  if grep -Eq "$row7" "$T/B.md" && grep -q 'batch 2, 7-bit weights: qforge int8' "$T/B.md"; then
    ok "harness: 7-bit report rows"
  else
    bad "harness: 7-bit report rows" "$(grep -E '7-bit|^\| fmnist_cnn' "$T/B.md")"
  fi
  # the table row for batch 2: four "ms · N/s" cells and two ratios
  row='^\| 2 \| 1 \|( [0-9.]+ ms · [0-9.]+/s \|){4} [0-9.]+x \| [0-9.]+x \|$'
  if grep -Eq "$row" "$T/B.md"; then
    ok "harness: report row"
  else
    bad "harness: report row" "$(grep -E '^\| [12] \|' "$T/B.md")"
  fi
fi

echo "bench smoke: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
