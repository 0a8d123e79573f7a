#!/usr/bin/env bash
# suite_report.sh BUILD - the HTML reports end to end, rendered in a real
# browser. A tiny CNN (random weights; one layer named like an XSS payload)
# and NPY data labelled with its own float predictions are made by Debian's
# python3 + torch; `qforge quantize` makes a .qfm, `qforge eval --report`
# and `qforge check --report` write the reports, and headless Chromium
# (Debian's /usr/bin/chromium via puppeteer-core, tests/node/report_check.js)
# loads each one: no console errors, no script run, no network request,
# every SVG chart present with a non-zero rendered size, the hostile name
# shown as plain text. Screenshots (and the reports) are kept in
# BUILD/artifacts/. With the small ResNet fixture of suite_ptq present, the
# BatchNorm check runs on a real model, and on a copy with one running mean
# moved by 4 std. Without chromium, node, puppeteer-core or the python
# packages the suite prints SKIP and counts nothing as passed.
set -uo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
Q=$PWD/$BUILD/qforge
PY=/usr/bin/python3
CHROMIUM=${QF_CHROMIUM:-/usr/bin/chromium}
ART=$PWD/$BUILD/artifacts
RES=$BUILD/fixtures/fmnist_resnet_quick.onnx
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
skip() {
  echo "SKIP: $*"
  echo "suite_report: 0 passed, 0 failed, 1 skipped"
  exit 0
}

[[ -x $Q ]] || { echo "FAIL: $Q not built"; echo "suite_report: 0 passed, 1 failed"; exit 1; }
[[ -x $CHROMIUM ]] || skip "$CHROMIUM not installed (apt-get install chromium)"
command -v node >/dev/null || skip "node not installed"
[[ -d tests/node/node_modules/puppeteer-core ]] ||
  skip "puppeteer-core missing (run: cd tests/node && npm install)"
"$PY" -c "import torch, onnx, numpy" 2>/dev/null || skip "python3 torch/onnx/numpy missing"

T=$(mktemp -d /tmp/qf_suite_report.XXXXXX)
trap 'rm -rf "$T"' EXIT
mkdir -p "$ART"
HOSTILE='conv<script>alert(1)</script>'

# Fixtures: tiny.onnx + x.npy/y.npy; nan.onnx (one NaN weight); and, when
# the ResNet fixture exists, bnoff.onnx (its first BN's running mean of
# channel 0 moved by 4 running std; the BN's name goes to bnname).
if ! "$PY" - "$T" "$HOSTILE" "$RES" >"$T/py.log" 2>&1 <<'PYEOF'; then
import os, sys, numpy as np, torch, onnx
from onnx import numpy_helper
T, hostile, res = sys.argv[1], sys.argv[2], sys.argv[3]
torch.manual_seed(7)
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8 * 4 * 4, 10)
    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))
net = Net()
x = torch.rand(96, 1, 8, 8)
net.train()
with torch.no_grad():  # settle the BN running statistics on the data
    for _ in range(30):
        net(x)
net.eval()
with torch.no_grad():
    y = net(x).argmax(1).numpy().astype(np.int32)  # float top-1 is 100% by construction
torch.onnx.export(net, x[:1], f"{T}/tiny.onnx", input_names=["x"], output_names=["logits"],
                  dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}}, opset_version=13,
                  do_constant_folding=False, training=torch.onnx.TrainingMode.EVAL)
m = onnx.load(f"{T}/tiny.onnx")
next(n for n in m.graph.node if n.op_type == "Conv").name = hostile
onnx.save(m, f"{T}/tiny.onnx")
for i, t in enumerate(m.graph.initializer):
    if t.name.endswith("conv2.weight"):
        a = numpy_helper.to_array(t).copy()
        a.flat[3] = np.nan
        m.graph.initializer[i].CopyFrom(numpy_helper.from_array(a, t.name))
onnx.save(m, f"{T}/nan.onnx")
np.save(f"{T}/x.npy", x.numpy())
np.save(f"{T}/y.npy", y)
if os.path.exists(res):
    m = onnx.load(res)
    inits = {t.name: i for i, t in enumerate(m.graph.initializer)}
    bn = next(n for n in m.graph.node if n.op_type == "BatchNormalization")
    mean = numpy_helper.to_array(m.graph.initializer[inits[bn.input[3]]]).copy()
    var = numpy_helper.to_array(m.graph.initializer[inits[bn.input[4]]])
    mean[0] += 4 * np.sqrt(var[0] + 1e-5)
    m.graph.initializer[inits[bn.input[3]]].CopyFrom(numpy_helper.from_array(mean, bn.input[3]))
    onnx.save(m, f"{T}/bnoff.onnx")
    open(f"{T}/bnname", "w").write(bn.name)
PYEOF
  cat "$T/py.log"
  bad "fixture generation"
  echo "suite_report: $pass passed, $fail failed"
  exit 1
fi

run() { # name, command...: succeeds with exit 0
  local name=$1; shift
  if "$@" >"$T/out" 2>"$T/err"; then ok "$name"; return 0; fi
  bad "$name: exit $?: $(head -c 400 "$T/err")"
  return 1
}

# Pages to render at the end, in one browser: NAME|HTML|MIN_SVG|TEXT
PAGES=()

run "quantize the tiny model" "$Q" quantize "$T/tiny.onnx" --calib "$T/x.npy" --labels "$T/y.npy" \
  -o "$T/tiny.qfm" -q
if run "eval --report" "$Q" eval "$T/tiny.qfm" --data "$T/x.npy" "$T/y.npy" --report "$T/eval.html"
then
  if grep -q "report: .*eval.html" "$T/out"; then ok "eval names the report"
  else bad "eval did not name the report"; fi
  # 3 weight layers, 5+ quantized activations: SQNR bars + 3 + 5 histograms + scatter
  PAGES+=("report_eval|$T/eval.html|10|$HOSTILE")
fi
# --json keeps working next to --report, with the same numbers
if run "eval --report --json" "$Q" eval "$T/tiny.qfm" --data "$T/x.npy" "$T/y.npy" --json \
  --report "$T/eval2.html"; then
  if "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["top1_float"] == 1.0 and d["samples"] == 96 and len(d["layers"]) >= 3, d
' "$T/out"; then ok "eval --json parses: float top-1 1.0 on 96 samples"
  else bad "eval --json output: $(head -c 300 "$T/out")"; fi
fi
if run "check --report" "$Q" check "$T/tiny.onnx" --data "$T/x.npy" --labels "$T/y.npy" \
  --report "$T/check.html"; then
  if grep -qE "verdict: +OK" "$T/out"; then ok "check verdict OK on a healthy model"
  else bad "check verdict: $(grep -E 'verdict|warn|fail' "$T/out" | head -c 600)"; fi
  # 3 weight histograms, the hostile layer name among their titles
  PAGES+=("report_check|$T/check.html|3|$HOSTILE")
fi
# a NaN weight: check fails with exit 1, and the report still renders
"$Q" check "$T/nan.onnx" --report "$T/nan.html" >"$T/out" 2>"$T/err"
rc=$?
if [[ $rc -eq 1 ]] && grep -qE "^fail +nan_inf" "$T/out"; then
  ok "check on a NaN weight: exit 1, nan_inf fail"
else
  bad "check on a NaN weight: exit $rc: $(head -c 300 "$T/out") $(head -c 300 "$T/err")"
fi
if [[ -s $T/nan.html ]]; then PAGES+=("report_check_nan|$T/nan.html|1|nan_inf")
else bad "no report for the NaN model"; fi
# bad input: exit 2, one line, no report left behind
"$Q" check "$T/tiny.onnx" --data "$T/y.npy" --labels "$T/y.npy" --report "$T/bad.html" \
  >/dev/null 2>"$T/err"
rc=$?
if [[ $rc -eq 2 && $(wc -l <"$T/err") -eq 1 && ! -e $T/bad.html ]]; then
  ok "check with mismatched data: exit 2, $(cat "$T/err")"
else
  bad "check with mismatched data: exit $rc: $(head -c 300 "$T/err")"
fi
"$Q" eval "$T/tiny.qfm" --data "$T/x.npy" "$T/y.npy" --report "$T/nodir/r.html" \
  >/dev/null 2>"$T/err"
rc=$?
if [[ $rc -eq 2 && $(wc -l <"$T/err") -eq 1 ]] && grep -q "nodir/r.html" "$T/err"; then
  ok "eval --report into a missing directory: exit 2 before any work"
else
  bad "eval --report into a missing directory: exit $rc: $(head -c 300 "$T/err")"
fi

# BatchNorm statistics on a real model (BN nodes kept in its ONNX)
if [[ -f $T/bnoff.onnx && -d /usr/share/datasets/fashion-mnist ]]; then
  "$Q" check "$RES" --data fashion-mnist --limit 200 >"$T/out" 2>"$T/err"
  rc=$?
  if [[ $rc -eq 0 ]] && grep -qE "^ok +bn_stats .*BatchNorm nodes match" "$T/out"; then
    ok "check on the ResNet fixture: BN statistics match the data"
  else
    bad "check on the ResNet fixture: exit $rc: $(grep -E 'bn_stats|verdict' "$T/out")"
  fi
  bnname=$(cat "$T/bnname")
  "$Q" check "$T/bnoff.onnx" --data fashion-mnist --limit 200 >"$T/out" 2>"$T/err"
  rc=$?
  line=$(grep -E "^warn +bn_stats" "$T/out" | head -1)
  z=$(awk '{print $4}' <<<"$line")
  # z = 4 from the shift, give or take the small natural offset on 200 images
  if [[ $rc -eq 0 && -n $line ]] && awk -v z="$z" 'BEGIN { exit !(z > 3.5 && z < 4.5) }' &&
    grep -qF -- "${bnname:0:20}" <<<"$line"; then
    ok "check with a BN mean moved by 4 std: warn, z $z"
  else
    bad "check with a BN mean moved by 4 std: exit $rc: ${line:-no bn_stats warning}"
  fi
else
  echo "SKIP (not counted): $RES or fashion-mnist missing: no BN check on a real model"
fi

# Render every report in one headless Chromium
args=(--chromium "$CHROMIUM")
for p in "${PAGES[@]}"; do
  IFS='|' read -r name html min text <<<"$p"
  cp "$html" "$ART/$name.html"
  args+=(--html "$html" --shot "$ART/$name.png" --min-svg "$min")
  [[ -n $text ]] && args+=(--expect-text "$text")
done
if ((${#PAGES[@]})); then
  node tests/node/report_check.js "${args[@]}" >"$T/render" 2>&1
  rc=$?
  if [[ $rc -eq 2 ]]; then
    echo "SKIP (not counted): the browser did not start: $(head -c 400 "$T/render")"
  else
    for p in "${PAGES[@]}"; do
      IFS='|' read -r name html min text <<<"$p"
      line=$(grep -F "\"page\":\"$(basename "$html")\"" "$T/render")
      if [[ -n $line && $line == *'"problems":[]'* && -s $ART/$name.png ]]; then
        ok "$name renders in chromium: $line"
      else
        bad "$name in chromium: ${line:-$(head -c 400 "$T/render")}"
      fi
    done
  fi
fi

echo "suite_report: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
