#!/usr/bin/env bash
# Run qforge's whole test suite against a build directory (default: build).
# Each part prints "name: N passed, N failed"; the totals close the run.
set -uo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
export QF_BUILD=$BUILD
# ONNX Runtime's fused int8 kernels saturate vpmaddubsw pair sums on CPUs
# without VNNI (its documented u8s8 limitation): there the tests compare with
# QDQ models run as written, unfused (tests/node/ort_run.js)
if ! grep -qwE 'avx512_vnni|avx_vnni' /proc/cpuinfo 2>/dev/null; then
  export QF_ORT_UNFUSED=1
  echo "no VNNI on this CPU: ONNX Runtime runs the QDQ models of the tests unfused"
fi
total_pass=0; total_fail=0
log=$(mktemp)
run_part() { # name, command...
  local name=$1; shift
  local t0=$(date +%s)
  "$@" >"$log" 2>&1
  local rc=$?
  local line
  line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  local p f
  p=$(echo "$line" | sed -nE 's/.* ([0-9]+) passed.*/\1/p'); p=${p:-0}
  f=$(echo "$line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p'); f=${f:-0}
  if [[ $rc -ne 0 && $f -eq 0 ]]; then f=1; fi
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
  local t1=$(date +%s)
  printf '%-28s %4d passed %3d failed  (%ds)\n' "$name" "$p" "$f" $((t1 - t0))
  if [[ $f -ne 0 || $rc -ne 0 ]]; then sed 's/^/    /' "$log" | grep -v '^    ok ' | tail -40; fi
}
for t in "$BUILD"/tests/test_*; do
  [[ -x $t ]] || continue
  run_part "$(basename "$t")" "$t"
done
for s in tests/suite_*.sh; do
  [[ -f $s ]] || continue
  run_part "$(basename "$s" .sh)" bash "$s" "$BUILD"
done
rm -f "$log"
echo "total: $total_pass passed, $total_fail failed"
[[ $total_fail -eq 0 ]]
