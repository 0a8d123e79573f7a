#!/usr/bin/env bash
# suite_compress.sh BUILD - `qforge compress` end to end on the quick
# Fashion-MNIST CNN (BUILD/fixtures/fmnist_cnn_quick.onnx, made and cached by
# tests/fixtures/make_ptq_fixtures.sh --quick):
#   - a reachable target (--max-drop 1): exit 0, the model written, at most a
#     quarter of the float ONNX file, its top-1 re-measured by `qforge eval`
#     equal to the pipeline's figure and within the drop; HTML and JSON
#     reports with steps, layers, histograms and the chosen configuration;
#   - an unreachable one (--max-drop 0, 1% size budget): exit 1, nothing at
#     OUT, the best result under OUT.best.qfm with --keep-best, and a report;
#   - bad input (validation samples of the wrong size, missing data,
#     missing --max-drop, bad budget): exit 2 with one line, no file left.
# Kept under a minute: 1,000 validation images, two calibrators, no QAT.
set -uo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
Q="$BUILD/qforge"
FIX="$BUILD/fixtures"
M="$FIX/fmnist_cnn_quick.onnx"
PY=/usr/bin/python3
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

bash tests/fixtures/make_ptq_fixtures.sh --quick "$FIX" >"$T/fixtures.log" 2>&1 ||
  { cat "$T/fixtures.log"; bad "fixtures"
    echo "suite_compress: $pass passed, $fail failed"; exit 1; }

FAST=(--val-limit 1000 --calibrators minmax,mse --calib-limit 200 --sens-limit 300
      --qat-epochs 0 --threads 2 -q)

# ---- 1. reachable target ---------------------------------------------------
"$Q" compress "$M" --data fashion-mnist --max-drop 1 "${FAST[@]}" --report "$T/r.html" --json \
  -o "$T/ok.qfm" >"$T/r.json" 2>"$T/ok.err"
rc=$?
[[ $rc -eq 0 ]] && ok "met: exit 0" || { bad "met: exit $rc"; cat "$T/ok.err"; }
[[ -s $T/ok.qfm ]] && ok "met: model written" || bad "met: no model"
[[ ! -e $T/ok.best.qfm ]] && ok "met: no .best file" || bad "met: .best written"
fsize=$(stat -c %s "$M")
qsize=$(stat -c %s "$T/ok.qfm" 2>/dev/null || echo 999999999)
if ((qsize * 4 <= fsize)); then ok "met: $qsize bytes <= 1/4 of float $fsize"
else bad "met: $qsize bytes vs float $fsize"; fi
grep -q "report: $T/r.html" "$T/ok.err" && grep -q "target met" "$T/ok.err" &&
  ok "met: summary names the result and the report" || bad "met: summary"
# the chosen configuration's accuracy against an independent `qforge eval`
"$Q" eval "$T/ok.qfm" --data fashion-mnist --limit 1000 --json >"$T/eval.json" 2>/dev/null
"$PY" - "$T/r.json" "$T/eval.json" <<'EOF' >"$T/check.log" 2>&1
import json, sys
r = json.load(open(sys.argv[1]))
ev = json.load(open(sys.argv[2]))
conf = r["configs"]
chosen = [c for c in conf if c["chosen"]]
flt = [c for c in conf if c["label"] == "float"][0]
assert len(chosen) == 1, chosen
acc = chosen[0]["accuracy"]
drop = 100 * (flt["accuracy"] - acc)
assert drop <= 1.0 + 1e-9, drop
assert abs(ev["top1_quant"] - acc) < 1e-6, (ev["top1_quant"], acc)
assert abs(ev["top1_float"] - flt["accuracy"]) < 1e-6, (ev["top1_float"], flt["accuracy"])
names = [s["name"] for s in r["steps"]]
for want in ("check", "float", "PTQ int8 (minmax)", "PTQ int8 (mse)", "verify"):
    assert want in names, (want, names)
assert len(r["layers"]) >= 4 and all("sqnr_db" in l for l in r["layers"])
kinds = {h["kind"] for h in r["histograms"]}
assert kinds == {"weight", "activation"}, kinds
print(f"chosen {chosen[0]['label']}: {100*acc:.2f}% (float {100*flt['accuracy']:.2f}%, "
      f"drop {drop:.2f}), eval agrees")
EOF
if [[ $? -eq 0 ]]; then ok "met: $(cat "$T/check.log")"
else bad "met: report/eval"; cat "$T/check.log"; fi
[[ -s $T/r.html ]] && grep -q "<svg" "$T/r.html" && ok "met: HTML report with charts" ||
  bad "met: HTML report"

# ---- 2. unreachable target -------------------------------------------------
"$Q" compress "$M" --data fashion-mnist --max-drop 0 --size-budget 1% --keep-best --no-cle \
  "${FAST[@]}" --val-limit 300 --sens-limit 200 --calibrators minmax --report "$T/u.html" \
  -o "$T/u.qfm" >"$T/u.out" 2>&1
rc=$?
[[ $rc -eq 1 ]] && ok "unreachable: exit 1" || { bad "unreachable: exit $rc"; tail -5 "$T/u.out"; }
[[ ! -e $T/u.qfm && -s $T/u.best.qfm ]] && ok "unreachable: only u.best.qfm written" ||
  bad "unreachable: files $(ls "$T" | tr '\n' ' ')"
grep -q "target NOT met" "$T/u.out" && grep -q "size budget .*: missed" "$T/u.out" &&
  ok "unreachable: summary says what was missed" || bad "unreachable: summary"
[[ -s $T/u.html ]] && ok "unreachable: report written" || bad "unreachable: no report"

# ---- 3. bad input: exit 2, one line, nothing written --------------------------
"$PY" - "$T/bad" <<'EOF'
import os, sys
import numpy as np
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
np.save(os.path.join(d, "images.npy"), np.zeros((10, 1, 20, 20), np.float32))
np.save(os.path.join(d, "labels.npy"), np.zeros((10,), np.int32))
EOF
bad_case() { # name, args...
  local name=$1; shift
  rm -f "$T/b.qfm" "$T/b.html"
  "$Q" compress "$@" -o "$T/b.qfm" >"$T/b.out" 2>"$T/b.err"
  local rc=$? lines
  lines=$(wc -l <"$T/b.err")
  if [[ $rc -eq 2 && $lines -eq 1 && ! -e $T/b.qfm && ! -e $T/b.html ]]; then
    ok "bad input: $name: exit 2, '$(head -c 90 "$T/b.err")'"
  else
    bad "bad input: $name: exit $rc, $lines lines"; cat "$T/b.err"
  fi
}
bad_case "wrong-size validation samples" "$M" --data fashion-mnist --val "$T/bad" \
  --max-drop 1 --report "$T/b.html"
bad_case "missing data" "$M" --data "$T/nope" --max-drop 1
bad_case "no --max-drop" "$M" --data fashion-mnist
bad_case "bad budget" "$M" --data fashion-mnist --max-drop 1 --size-budget 12parsecs
bad_case "not a model" "$T/bad/images.npy" --data fashion-mnist --max-drop 1

echo "suite_compress: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
