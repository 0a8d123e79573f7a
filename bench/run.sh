#!/usr/bin/env bash
# bench/run.sh - what `make bench` runs: qforge fp32, qforge int8, ONNX Runtime
# fp32 and ONNX Runtime int8 (the QDQ model qforge exports) side by side on the
# benchmark models, plus the int8 GEMM peak table and the peak memory of
# `qforge run`; writes BENCHMARKS.md.
#
# Usage: bash bench/run.sh            (from anywhere; works in the repository root)
# Environment:
#   BUILD=build           build directory (the library, the CLI, the model cache)
#   BENCH_DIR=$BUILD/bench  model cache and raw results (models are made once)
#   BENCH_QUICK=1         batch 1 and 8, 2 repetitions, 0.5 s slices (a few minutes)
#   BENCH_MODELS=a,b      subset of fmnist_cnn,fmnist_resnet,mobilenetv2,resnet18,
#                         squeezenet11,alexnet
#   BENCH_BATCHES="1 64"  BENCH_THREADS="1 2"  BENCH_REPS=5  BENCH_SECONDS=0.6
#                         (per-measurement time slice; batch >= 32 gets twice that)
#   BENCH_REPORT=BENCHMARKS.md   where the report goes
#   BENCH_NO_BUILD=1      use $BUILD as it is (no make, no gemm_peak build; for tests)
#   BENCH_NOTE=text       a remark printed at the top of the report
#   BENCH_NOTES_FILE=F    markdown appended to the report as "Notes on this run"
#   BENCH_PEAK_GMACS=N    the machine's 2-thread int8 peak in GMAC/s, when gemm_peak's
#                         output cannot be parsed (used for the "65% of peak" clause)
#   BENCH_R7=auto|0|1     also measure both int8 engines on models quantized with
#                         --reduce-range (7-bit weights: what a CPU without VNNI should
#                         run); auto (default) = when the CPU has AVX2 but no AVX-512 VNNI
#   BENCH_R7_THREADS="2"  thread counts of those extra measurements
#
# Each (model, batch, threads) cell is measured by four separate processes,
# run back to back, and the whole grid is repeated BENCH_REPS times
# (round-robin), so machine noise hits the four engines alike; the report
# takes the median over repetitions of each process's median latency. The two
# int8 engines, whose ratio the targets judge, run next to each other, in
# alternating order from one repetition to the next (on a shared VM the speed
# of a core drifts over seconds; adjacent, alternated runs see the same drift).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
BUILD=${BUILD:-build}
DIR=${BENCH_DIR:-$BUILD/bench}
QUICK=${BENCH_QUICK:-0}
MODELS=${BENCH_MODELS:-fmnist_cnn,fmnist_resnet,mobilenetv2,resnet18,squeezenet11,alexnet}
THREADS=${BENCH_THREADS:-1 2}
REPORT=${BENCH_REPORT:-BENCHMARKS.md}
if [[ $QUICK == 1 ]]; then
  BATCHES=${BENCH_BATCHES:-1 8} REPS=${BENCH_REPS:-2} SLICE=${BENCH_SECONDS:-0.5}
else
  BATCHES=${BENCH_BATCHES:-1 64} REPS=${BENCH_REPS:-5} SLICE=${BENCH_SECONDS:-0.6}
fi
R7=${BENCH_R7:-auto}
if [[ $R7 == auto ]]; then
  R7=0
  if grep -qw avx2 /proc/cpuinfo 2>/dev/null && ! grep -qw avx512_vnni /proc/cpuinfo; then R7=1; fi
fi
R7_THREADS=${BENCH_R7_THREADS:-2}
QF=$BUILD/qforge
ORT=tests/node/ort_bench.js
RESULTS=$DIR/results.jsonl
COMMAND="make bench"
[[ $QUICK == 1 ]] && COMMAND="BENCH_QUICK=1 make bench"
[[ -n ${BENCH_MODELS:-} ]] && COMMAND="BENCH_MODELS=$BENCH_MODELS $COMMAND"
export PYTHONWARNINGS=ignore PYTHONDONTWRITEBYTECODE=1 OMP_NUM_THREADS=2

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
json_str() { "$PY" -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }

# ---- build ----------------------------------------------------------------
mkdir -p "$DIR"
if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
  log "building $BUILD (make all)"
  make -s BUILD="$BUILD" -j2 all >&2
fi
if [[ ${BENCH_NO_BUILD:-0} != 1 && -f bench/gemm_peak.c ]]; then
  log "building $DIR/gemm_peak"
  # Same flags as the library; the kernels pick their ISA at run time.
  if ! ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -g -pthread -Iinclude -Isrc -I"$BUILD/gen" \
      -o "$DIR/gemm_peak" bench/gemm_peak.c "$BUILD/libqforge.a" \
      -lprotobuf-c -lcjson -lzstd -lz -lm -lpthread -ldl 2>"$DIR/gemm_peak.build.log"; then
    log "gemm_peak did not build (see $DIR/gemm_peak.build.log)"
    rm -f "$DIR/gemm_peak"
  fi
fi
if [[ ! -d tests/node/node_modules/onnxruntime-node ]]; then
  log "onnxruntime-node is not installed in tests/node (run scripts/install-deps.sh)"
  exit 2
fi

# ---- fixtures ----------------------------------------------------------------
log "model fixtures in $DIR"
"$PY" bench/make_models.py "$DIR" --models "$MODELS" >&2
IFS=, read -r -a model_list <<<"$MODELS"
for m in "${model_list[@]}"; do
  base=$DIR/$m
  if [[ ! -f $base.qfm || $base.qfm -ot $base.onnx ]]; then
    log "quantizing $m"
    "$QF" quantize "$base.onnx" --calib "$base.calib.npy" --labels "$base.calib_labels.npy" \
      --method minmax -t 2 -q -o "$base.qfm" >&2
  fi
  if [[ ! -f $base.qdq.onnx || $base.qdq.onnx -ot $base.qfm ]]; then
    "$QF" export "$base.qfm" --format onnx -o "$base.qdq.onnx" >&2
  fi
  if [[ $R7 == 1 ]]; then
    if [[ ! -f $base.r7.qfm || $base.r7.qfm -ot $base.onnx ]]; then
      log "quantizing $m with --reduce-range"
      "$QF" quantize "$base.onnx" --calib "$base.calib.npy" --labels "$base.calib_labels.npy" \
        --method minmax --reduce-range -t 2 -q -o "$base.r7.qfm" >&2
    fi
    if [[ ! -f $base.r7.qdq.onnx || $base.r7.qdq.onnx -ot $base.r7.qfm ]]; then
      "$QF" export "$base.r7.qfm" --format onnx -o "$base.r7.qdq.onnx" >&2
    fi
  fi
done

# ---- timing grid -------------------------------------------------------------------
# One measurement: engine (qforge|ort), precision (fp32|int8); appends one line.
measure() {
  local model=$1 prec=$2 engine=$3 batch=$4 threads=$5 rep=$6 file out err rc=0
  local slice=$SLICE warm=1
  # Big batches: a run can take seconds here, so no separate warm-up (the
  # median of several runs, or the one run, is reported) and a longer slice.
  if ((batch >= 32)); then
    warm=0
    slice=$("$PY" -c "print(2 * $SLICE)")
  fi
  if [[ $engine == qforge ]]; then
    case $prec in
      fp32) file=$DIR/$model.onnx ;;
      int8r7) file=$DIR/$model.r7.qfm ;;
      *) file=$DIR/$model.qfm ;;
    esac
    out=$("$QF" bench "$file" --batch "$batch" --threads "$threads" --warmup $warm \
      --seconds "$slice" --json 2>"$DIR/err.txt") || rc=$?
  else
    case $prec in
      fp32) file=$DIR/$model.onnx ;;
      int8r7) file=$DIR/$model.r7.qdq.onnx ;;
      *) file=$DIR/$model.qdq.onnx ;;
    esac
    out=$(node "$ORT" "$file" --batch "$batch" --threads "$threads" --warmup $warm \
      --seconds "$slice" 2>"$DIR/err.txt") || rc=$?
  fi
  local head="\"model\": \"$model\", \"engine\": \"$engine\", \"precision\": \"$prec\""
  head+=", \"batch\": $batch, \"threads\": $threads, \"rep\": $rep"
  if ((rc == 0)) && [[ -n $out ]]; then
    printf '{%s, "result": %s}\n' "$head" "$out" >>"$RESULTS"
  else
    err=$(tr '\n' ' ' <"$DIR/err.txt")
    log "FAILED: $engine $prec $model batch $batch threads $threads: $err"
    printf '{%s, "error": %s}\n' "$head" "$(json_str "exit $rc: $err")" >>"$RESULTS"
  fi
}

: >"$RESULTS"
t_start=$(date +%s)
for ((rep = 1; rep <= REPS; rep++)); do
  for m in "${model_list[@]}"; do
    for b in $BATCHES; do
      for t in $THREADS; do
        log "rep $rep/$REPS: $m batch $b threads $t"
        if ((rep % 2)); then
          measure "$m" int8 qforge "$b" "$t" "$rep"
          measure "$m" int8 ort "$b" "$t" "$rep"
          measure "$m" fp32 qforge "$b" "$t" "$rep"
          measure "$m" fp32 ort "$b" "$t" "$rep"
        else
          measure "$m" int8 ort "$b" "$t" "$rep"
          measure "$m" int8 qforge "$b" "$t" "$rep"
          measure "$m" fp32 ort "$b" "$t" "$rep"
          measure "$m" fp32 qforge "$b" "$t" "$rep"
        fi
        if [[ $R7 == 1 && " $R7_THREADS " == *" $t "* ]]; then
          if ((rep % 2)); then
            measure "$m" int8r7 qforge "$b" "$t" "$rep"
            measure "$m" int8r7 ort "$b" "$t" "$rep"
          else
            measure "$m" int8r7 ort "$b" "$t" "$rep"
            measure "$m" int8r7 qforge "$b" "$t" "$rep"
          fi
        fi
      done
    done
  done
done
log "timing grid took $(($(date +%s) - t_start)) s"

# ---- GEMM peak ------------------------------------------------------------------------
: >"$DIR/gemm_peak.txt"
if [[ -x $DIR/gemm_peak ]]; then
  log "running gemm_peak"
  "$DIR/gemm_peak" >"$DIR/gemm_peak.txt" 2>&1 || log "gemm_peak exited with $?"
fi

# ---- peak memory of `qforge run` on MobileNetV2 int8 ----------------------------------
: >"$DIR/mem.txt"
if [[ ,$MODELS, == *,mobilenetv2,* ]]; then
  log "peak memory of qforge run on mobilenetv2.qfm"
  /usr/bin/time -v "$QF" run "$DIR/mobilenetv2.qfm" --input "$DIR/mobilenetv2.input1.npy" \
    -o "$DIR/mobilenetv2.out.npy" 2>"$DIR/mem.txt" >/dev/null || log "qforge run failed"
  # the process's own floor: binary, shared libraries, C runtime
  /usr/bin/time -v "$QF" --version 2>"$DIR/mem_base.txt" >/dev/null || true
  "$QF" bench "$DIR/mobilenetv2.qfm" --iters 1 --warmup 0 --json >"$DIR/mem_arena.json" ||
    log "qforge bench (arena) failed"
fi

# ---- report ------------------------------------------------------------------------------
"$PY" bench/report.py --results "$RESULTS" --dir "$DIR" --command "$COMMAND" \
  --settings "batches $BATCHES; threads $THREADS; $REPS repetitions; ${SLICE} s slices$(
    [[ $R7 == 1 ]] && echo "; 7-bit weights (--reduce-range) also at threads $R7_THREADS")" \
  --quick "$QUICK" -o "$REPORT"
log "wrote $REPORT"
