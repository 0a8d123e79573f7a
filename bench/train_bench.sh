#!/usr/bin/env bash
# train_bench.sh BUILD - training throughput of qforge's C trainer vs PyTorch
# (Debian python3-torch) on the same architectures, batch, thread count and
# Fashion-MNIST images: one pass over TB_IMAGES (default 6400) training
# images, SGD Nesterov, batch 64, 2 threads; the engines alternate for
# TB_REPS (default 3) repetitions and the median images/s is reported with
# the qforge/PyTorch ratio. Writes the table to stdout (Markdown) and, with
# --write, into the "Training throughput" section of BENCHMARKS.md.
set -euo pipefail
BUILD=${1:-build}
WRITE=${2:-}
cd "$(dirname "$0")/.."
Q="$BUILD/qforge"
N=${TB_IMAGES:-6400}
REPS=${TB_REPS:-3}
THREADS=${TB_THREADS:-2}
ARCHS=${TB_ARCHS:-lenet resnet8 mobilenet_v2_tiny}
[[ -x $Q ]] || { echo "train_bench: build $Q first (make)" >&2; exit 2; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
table="| architecture | qforge images/s | PyTorch images/s | qforge / PyTorch |
|---|---:|---:|---:|"
for arch in $ARCHS; do
  : >"$T/q"; : >"$T/p"
  for ((r = 0; r < REPS; r++)); do
    # one epoch on N images, no validation; images/s of the training steps only
    "$Q" train --arch "$arch" --data fashion-mnist --limit "$N" --val none --epochs 1 \
      --batch 64 --threads "$THREADS" --warmup 0 -o "$T/m.onnx" 2>/dev/null |
      sed -nE 's/.* ([0-9.]+) img\/s$/\1/p' | tail -1 >>"$T/q"
    /usr/bin/python3 bench/train_bench.py --arch "$arch" --limit "$N" --batch 64 \
      --threads "$THREADS" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['images_per_s'])" >>"$T/p"
  done
  q=$(median <"$T/q"); p=$(median <"$T/p")
  ratio=$(awk -v a="$q" -v b="$p" 'BEGIN { printf "%.2f", a / b }')
  table+=$'\n'"| $arch | $(printf %.0f "$q") | $(printf %.0f "$p") | ${ratio}x |"
done
cpu=$(lscpu | sed -nE 's/^Model name: +//p' | head -1)
section="## Training throughput (qforge train vs PyTorch)

Command: \`bash bench/train_bench.sh $BUILD --write\` ($(date -u '+%Y-%m-%d %H:%M UTC'), $cpu,
load average $(cut -d' ' -f1 /proc/loadavg) at the end). One pass over the first $N Fashion-MNIST
training images, batch 64, SGD (Nesterov momentum 0.9, weight decay 5e-4), $THREADS threads;
PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') (Debian python3-torch) runs the
twin architectures of tests/fixtures/torch_twins.py. The engines alternate; medians of $REPS runs.

$table"
echo "$section"
if [[ $WRITE == --write ]]; then
  f=BENCHMARKS.md
  [[ -f $f ]] || echo "# qforge benchmarks" >"$f"
  # replace an earlier section of the same title, keep everything else
  awk -v sec="$section" '
    /^## Training throughput/ { skip = 1; print sec; done = 1; next }
    skip && /^## / { skip = 0 }
    !skip { print }
    END { if (!done) { print ""; print sec } }' "$f" >"$f.tmp" && mv "$f.tmp" "$f"
fi
