#!/usr/bin/env bash
# ab.sh - in-process A/B of two commits (or the work tree) of libqforge on
# one model: both libraries are linked into bench/ab_harness.c (B's symbols
# renamed), and their runs alternate in one process (see the harness).
#
# Usage: bash bench/ab.sh A B MODEL [BATCH] [THREADS] [REPS]
#   A, B: git revisions (commit, branch, tag) or "work" for the work tree,
#         each built once into build-ab/<name> (flags: EXTRA_CFLAGS as given)
#   e.g. bash bench/ab.sh HEAD~1 work build/bench/mobilenetv2.qfm 1 2 100
# Revisions are checked out as git worktrees under build-ab/ (remove them
# with `git worktree remove build-ab/src-HASH`, or rm -rf build-ab and
# `git worktree prune`).
set -euo pipefail
cd "$(dirname "$0")/.."
if (($# < 3)); then
  sed -n '2,12p' "$0" >&2
  exit 2
fi
A=$1 B=$2 MODEL=$3 BATCH=${4:-1} THREADS=${5:-1} REPS=${6:-50}
OUT=build-ab
mkdir -p "$OUT"

# build_one REV -> prints the directory holding libqforge.a (and libB.a)
build_one() {
  local rev=$1 name src
  if [[ $rev == work ]]; then
    name=work src=$PWD
  else
    name=$(git rev-parse --short "$rev")
    src=$OUT/src-$name
    if [[ ! -d $src ]]; then
      git worktree add --detach "$src" "$rev" >/dev/null 2>&1 ||
        { echo "ab.sh: cannot check out $rev" >&2; exit 1; }
    fi
  fi
  local dir=$PWD/$OUT/$name
  make -s -C "$src" -j2 BUILD="$dir" EXTRA_CFLAGS="${EXTRA_CFLAGS:-}" "$dir/libqforge.a" >&2
  nm -g --defined-only "$dir/libqforge.a" | awk 'NF == 3 {print $3 " B_" $3}' | sort -u >"$dir/syms"
  objcopy --redefine-syms="$dir/syms" "$dir/libqforge.a" "$dir/libB.a"
  echo "$dir"
}

da=$(build_one "$A")
db=$(build_one "$B")
"${CC:-cc}" -std=c11 -D_GNU_SOURCE -O2 -Iinclude -o "$OUT/ab_harness" bench/ab_harness.c \
  "$da/libqforge.a" "$db/libB.a" -lopenblas -lprotobuf-c -lcjson -lzstd -lz -lm -lpthread -ldl
echo "A = $A, B = $B"
"$OUT/ab_harness" "$MODEL" "$BATCH" "$THREADS" "$REPS"
