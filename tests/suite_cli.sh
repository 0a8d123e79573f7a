#!/usr/bin/env bash
# suite_cli.sh - end-to-end tests of the qforge command-line tool.
# Usage: bash tests/suite_cli.sh BUILD
# Small ONNX models and their numpy reference outputs are generated at test
# time with Debian's python3 (onnx.helper + numpy); qforge's results are
# compared with numpy's. Checks exit codes (0 ok, 2 bad usage/input), that
# each error is exactly one stderr line "qforge: ..." naming the file, and
# that failed runs leave no output file behind.
set -uo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
QF=$PWD/$BUILD/qforge
PY=/usr/bin/python3
pass=0
fail=0
T=$(mktemp -d /tmp/qf_suite_cli.XXXXXX)
trap 'rm -rf "$T"' EXIT

ok() { pass=$((pass + 1)); echo "ok $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1: $2"; }

# run_q NAME: run qforge with the remaining args; sets rc, out, err.
run_q() {
  "$QF" "$@" >"$T/stdout" 2>"$T/stderr"
  rc=$?
}

# expect_ok NAME ARGS...: exit 0 and empty stderr.
expect_ok() {
  local name=$1; shift
  run_q "$@"
  if [[ $rc -ne 0 ]]; then bad "$name" "exit $rc: $(head -c 300 "$T/stderr")"; return 1; fi
  ok "$name"
}

# expect_err NAME CODE NEEDLE ARGS...: exit CODE, exactly one stderr line
# starting "qforge: " and containing NEEDLE.
expect_err() {
  local name=$1 code=$2 needle=$3; shift 3
  run_q "$@"
  local lines
  lines=$(wc -l <"$T/stderr")
  local why=""
  if [[ $rc -ne $code ]]; then why="exit $rc, wanted $code"
  elif [[ $lines -ne 1 ]]; then why="$lines stderr lines"
  elif ! grep -q '^qforge: ' "$T/stderr"; then why="no 'qforge: ' prefix"
  elif ! grep -qF -- "$needle" "$T/stderr"; then why="'$needle' not in the message"
  fi
  if [[ -n $why ]]; then bad "$name" "$why: $(head -c 300 "$T/stderr")"; return 1; fi
  ok "$name"
}

# check NAME COMMAND...: the command succeeds (its stderr explains a failure).
check() {
  local name=$1; shift
  if "$@" 2>"$T/check_err"; then ok "$name"; else bad "$name" "$(tail -c 300 "$T/check_err")"; fi
}

# has NAME PATTERN FILE: an extended regex matches a line of FILE.
has() {
  if grep -qE -- "$2" "$3"; then ok "$1"; else bad "$1" "/$2/ not in: $(head -c 600 "$3")"; fi
}

# no_file NAME PATH: PATH (and any temp twin of it) must not exist.
no_file() {
  if ls "$2"* >/dev/null 2>&1; then bad "$1" "left behind: $(ls "$2"*)"; else ok "$1"; fi
}

if [[ ! -x $QF ]]; then
  echo "FAIL: $QF not built"
  echo "suite_cli: 0 passed, 1 failed"
  exit 1
fi

# ---- fixtures ------------------------------------------------------------
if ! "$PY" - "$T" <<'PYEOF'; then
import sys, gzip, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
T = sys.argv[1]
rng = np.random.default_rng(1234)

def save(model, name):
    onnx.checker.check_model(model)
    onnx.save(model, f"{T}/{name}")

def vi(name, shape, dt=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dt, shape)

# Gemm + Relu with a dynamic batch: y = relu(x W^T + b)
W = rng.standard_normal((3, 4)).astype(np.float32)
b = rng.standard_normal(3).astype(np.float32)
g = helper.make_graph(
    [helper.make_node("Gemm", ["x", "W", "b"], ["h"], name="fc", transB=1),
     helper.make_node("Relu", ["h"], ["y"], name="act")],
    "gemm_relu", [vi("x", ["batch", 4])], [vi("y", ["batch", 3])],
    [numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "b")])
save(helper.make_model(g, producer_name="suite_cli", opset_imports=[helper.make_opsetid("", 13)]),
     "gemm_relu.onnx")
x = rng.standard_normal((5, 4)).astype(np.float32)
np.save(f"{T}/x.npy", x)
np.save(f"{T}/ref.npy", np.maximum(x @ W.T + b, 0))
np.save(f"{T}/x_wrong_shape.npy", rng.standard_normal((5, 5)).astype(np.float32))
np.save(f"{T}/x_f64.npy", x.astype(np.float64))
open(f"{T}/empty.npy", "wb").close()
raw = open(f"{T}/gemm_relu.onnx", "rb").read()
open(f"{T}/truncated.onnx", "wb").write(raw[: len(raw) // 2])

# two inputs, two outputs: s = a + b, d = relu(a - b)
g = helper.make_graph(
    [helper.make_node("Add", ["a", "b"], ["s"], name="add"),
     helper.make_node("Sub", ["a", "b"], ["t"], name="sub"),
     helper.make_node("Relu", ["t"], ["d"], name="relu")],
    "two_by_two", [vi("a", [2, 3]), vi("b", [2, 3])], [vi("s", [2, 3]), vi("d", [2, 3])])
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "two.onnx")
a2 = rng.standard_normal((2, 3)).astype(np.float32)
b2 = rng.standard_normal((2, 3)).astype(np.float32)
np.save(f"{T}/a.npy", a2); np.save(f"{T}/b.npy", b2)
np.save(f"{T}/ref_s.npy", a2 + b2); np.save(f"{T}/ref_d.npy", np.maximum(a2 - b2, 0))

# Linear classifiers over Fashion-MNIST (random weights: the accuracy is
# whatever numpy says it is). Batch dim dynamic, fixed at 1, fixed at 7.
Wc = (rng.standard_normal((10, 784)) * 0.05).astype(np.float32)
bc = (rng.standard_normal(10) * 0.1).astype(np.float32)
for name, bdim in (("cls_dyn.onnx", "N"), ("cls_b1.onnx", 1), ("cls_b7.onnx", 7)):
    g = helper.make_graph(
        [helper.make_node("Flatten", ["img"], ["f"], name="flat", axis=1),
         helper.make_node("Gemm", ["f", "Wc", "bc"], ["logits"], name="fc", transB=1)],
        "cls", [vi("img", [bdim, 1, 28, 28])], [vi("logits", [bdim, 10])],
        [numpy_helper.from_array(Wc, "Wc"), numpy_helper.from_array(bc, "bc")])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), name)
# the same classifier taking flat [N, 784] input
g = helper.make_graph(
    [helper.make_node("Gemm", ["f", "Wc", "bc"], ["logits"], name="fc", transB=1)],
    "cls_flat", [vi("f", ["N", 784])], [vi("logits", ["N", 10])],
    [numpy_helper.from_array(Wc, "Wc"), numpy_helper.from_array(bc, "bc")])
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "cls_flat.onnx")
# 3 classes only: Fashion-MNIST labels go up to 9
g = helper.make_graph(
    [helper.make_node("Flatten", ["img"], ["f"], name="flat", axis=1),
     helper.make_node("Gemm", ["f", "W3", "b3"], ["logits"], name="fc", transB=1)],
    "cls3", [vi("img", ["N", 1, 28, 28])], [vi("logits", ["N", 3])],
    [numpy_helper.from_array(Wc[:3], "W3"), numpy_helper.from_array(bc[:3], "b3")])
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "cls3.onnx")

def idx(path):
    d = gzip.open(path).read()
    nd = d[3]
    dims = [int.from_bytes(d[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(d, np.uint8, offset=4 + 4 * nd).reshape(dims)
base = "/usr/share/datasets/fashion-mnist/"
N = 500
imgs = idx(base + "t10k-images-idx3-ubyte.gz")[:N].astype(np.float32) / 255
labels = idx(base + "t10k-labels-idx1-ubyte.gz")[:N].astype(np.int64)
logits = imgs.reshape(N, 784) @ Wc.T + bc
rank = (logits > logits[np.arange(N), labels][:, None]).sum(1)
open(f"{T}/expect_fmnist.txt", "w").write(f"{(rank == 0).sum()} {(rank < 5).sum()}\n")

# an explicit NPY dataset: 2x2 float images, 10 classes via the same style
Wn = rng.standard_normal((10, 4)).astype(np.float32)
g = helper.make_graph(
    [helper.make_node("Flatten", ["img"], ["f"], name="flat", axis=1),
     helper.make_node("Gemm", ["f", "Wn"], ["logits"], name="fc", transB=1)],
    "npy_cls", [vi("img", ["N", 1, 2, 2])], [vi("logits", ["N", 10])],
    [numpy_helper.from_array(Wn, "Wn")])
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "npy_cls.onnx")
xi = rng.standard_normal((37, 2, 2)).astype(np.float32)
yl = rng.integers(0, 10, 37).astype(np.int64)
np.save(f"{T}/ds_images.npy", xi); np.save(f"{T}/ds_labels.npy", yl)
lg = xi.reshape(37, 4) @ Wn.T
rank = (lg > lg[np.arange(37), yl][:, None]).sum(1)
open(f"{T}/expect_npy.txt", "w").write(f"{(rank == 0).sum()} {(rank < 5).sum()}\n")
PYEOF
  echo "FAIL fixtures: python failed"
  echo "suite_cli: $pass passed, $((fail + 1)) failed"
  exit 1
fi
cd "$T" # file names in commands and messages are relative from here on

# close A.npy B.npy: float32, same shape, max abs diff <= 1e-5 (relative to scale)
close() {
  "$PY" -c '
import sys, numpy as np
a = np.load(sys.argv[1]); b = np.load(sys.argv[2])
assert a.dtype == np.float32, a.dtype
assert a.shape == b.shape, (a.shape, b.shape)
err = np.abs(a - b).max() if a.size else 0.0
assert err <= 1e-5 * max(1.0, np.abs(b).max()), err
' "$1" "$2"
}

# ---- help, version, usage errors -------------------------------------------
expect_ok "--help" --help
has "--help text" "^usage: qforge <command>" stdout
expect_ok "--version" --version
has "--version text" "^qforge 0\.1\.0$" stdout
for verb in inspect run eval; do
  expect_ok "$verb --help" "$verb" --help
  has "$verb --help usage" "^usage: qforge $verb " stdout
  has "$verb --help options" "^options:" stdout
  has "$verb --help example" "^  qforge $verb " stdout
  expect_err "$verb unknown flag" 2 "unknown option '--bogus'" "$verb" --bogus x
done
expect_ok "help run" help run
expect_err "unknown verb" 2 "did you mean 'run'" rnu
expect_err "unknown global flag" 2 "unknown option '--frobnicate'" --frobnicate
run_q
[[ $rc -eq 2 ]] && ok "no arguments exits 2" || bad "no arguments exits 2" "exit $rc"
expect_err "run without -o" 2 "no output file" run gemm_relu.onnx --input x.npy
expect_err "run bad --threads" 2 "--threads expects an integer" \
  run gemm_relu.onnx --input x.npy -o o.npy --threads zero
expect_err "option missing its value" 2 "needs a value" run gemm_relu.onnx --input

# ---- run: numerics against numpy ---------------------------------------------
expect_ok "run gemm+relu" run gemm_relu.onnx --input x.npy -o y.npy
check "gemm+relu matches numpy" close y.npy ref.npy
expect_ok "run --threads 2, NAME=FILE" run gemm_relu.onnx --input x=x.npy -o y2.npy --threads 2
check "threads 2 matches numpy" close y2.npy ref.npy
expect_ok "run two outputs, inputs by name" run two.onnx --input b=b.npy --input a=a.npy -o s.npy
check "output 0 (a+b)" close s.npy ref_s.npy
check "output 1 to s_1.npy (relu(a-b))" close s_1.npy ref_d.npy
expect_ok "run two -o" run two.onnx -i a.npy -i b.npy -o p.npy -o q.npy
check "second -o gets output 1" close q.npy ref_d.npy
expect_err "run too many -o" 2 "3 output files given" \
  run two.onnx -i a.npy -i b.npy -o o1.npy -o o2.npy -o o3.npy
expect_err "run missing input" 2 "no file for model input 1 'b'" run two.onnx -i a.npy -o o1.npy
no_file "missing input leaves no output" o1.npy

# ---- run: bad files -> exit 2, one line naming the file, no output ----------
expect_err "missing model file" 2 "nope.onnx" run nope.onnx --input x.npy -o out_a.npy
no_file "missing model: no output" out_a.npy
expect_err "truncated model" 2 "truncated.onnx" run truncated.onnx --input x.npy -o out_b.npy
no_file "truncated model: no output" out_b.npy
expect_err "zero-length npy" 2 "empty.npy" run gemm_relu.onnx --input empty.npy -o out_c.npy
no_file "zero-length npy: no output" out_c.npy
expect_err "missing npy" 2 "nothere.npy" run gemm_relu.onnx --input nothere.npy -o out_d.npy
no_file "missing npy: no output" out_d.npy
expect_err "wrong input shape" 2 "x_wrong_shape.npy" \
  run gemm_relu.onnx --input x_wrong_shape.npy -o out_e.npy
has "wrong shape message names input and shape" "input 'x' expects shape \[N, 4\]" stderr
no_file "wrong shape: no output" out_e.npy
expect_err "wrong input dtype" 2 "must be float32" run gemm_relu.onnx --input x_f64.npy -o out_f.npy
no_file "wrong dtype: no output" out_f.npy
expect_err "unwritable output" 2 "no/such/dir/y.npy" \
  run gemm_relu.onnx --input x.npy -o no/such/dir/y.npy

# ---- inspect -------------------------------------------------------------------
expect_ok "inspect" inspect gemm_relu.onnx
for want in "^producer: +suite_cli$" "^opset: +13$" "^  x +float32 +\[N, 4\]$" \
            "^  y +float32 +\[N, 3\]$" "^  0 +Gemm +fc +\[N, 3\] +15$" \
            "^  1 +Relu +act +\[N, 3\] +0$" \
            "^parameters: 15 \(60 B\)$" "^  float32 +15 values +60 bytes$" \
            "^quantizable ops: 1 \(Conv 0, Gemm 1, MatMul 0\)$"; do
  has "inspect shows /$want/" "$want" stdout
done
expect_ok "inspect --json" inspect cls_dyn.onnx --json
check "inspect --json content" "$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["parameters"] == 7850, r["parameters"]
assert r["parameter_bytes"] == 31400
assert r["inputs"][0]["shape"] == [-1, 1, 28, 28], r["inputs"]
assert [n["op"] for n in r["nodes"]] == ["Flatten", "Gemm"]
assert r["nodes"][1]["params"] == 7850 and r["nodes"][0]["params"] == 0
assert r["nodes"][1]["output_shape"] == [-1, 10], r["nodes"][1]
assert r["op_histogram"] == {"Flatten": 1, "Gemm": 1}
assert r["quantizable_ops"] == 1
' stdout
expect_err "inspect truncated" 2 "truncated.onnx" inspect truncated.onnx

# ---- eval ------------------------------------------------------------------------
read -r want1 want5 <expect_fmnist.txt
for m in cls_dyn cls_b1 cls_b7 cls_flat; do
  expect_ok "eval $m" eval "$m.onnx" --data fashion-mnist --limit 500 --batch 64 --json
  check "eval $m accuracy = numpy's" "$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["samples"] == 500 and r["classes"] == 10, r
assert r["top1_correct"] == int(sys.argv[2]), (r["top1_correct"], sys.argv[2])
assert r["top5_correct"] == int(sys.argv[3]), (r["top5_correct"], sys.argv[3])
assert r["images_per_second"] > 0
' stdout "$want1" "$want5"
done
has "eval progress lines when not a tty" "^eval: 100% " stderr
read -r want1 want5 <expect_npy.txt
expect_ok "eval NPY IMAGES LABELS" eval npy_cls.onnx --data ds_images.npy ds_labels.npy --batch 8
has "eval NPY top-1 = numpy's ($want1/37)" "^top-1: .*\($want1/37\)$" stdout
has "eval NPY top-5 = numpy's ($want5/37)" "^top-5: .*\($want5/37\)$" stdout
expect_err "eval labels beyond classes" 2 "model outputs 3 classes" \
  eval cls3.onnx --data fashion-mnist --limit 50
expect_err "eval missing dataset" 2 "no-such-data" eval cls_dyn.onnx --data no-such-data
expect_err "eval images without labels" 2 "needs a labels file" \
  eval npy_cls.onnx --data ds_images.npy
expect_err "eval shape mismatch" 2 "expects [N, 1, 2, 2]" \
  eval npy_cls.onnx --data fashion-mnist --limit 10
expect_err "eval bad split" 2 "--split must be test or train" \
  eval cls_dyn.onnx --data fashion-mnist --split dev
expect_err "eval without --data" 2 "no dataset" eval cls_dyn.onnx

echo "suite_cli: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
