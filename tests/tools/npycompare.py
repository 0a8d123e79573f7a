#!/usr/bin/python3
"""Compare two NPY arrays (qforge's output against a reference).

Usage: /usr/bin/python3 tests/tools/npycompare.py GOT.npy REF.npy [--tol T] [--label L]

Definitions (REF is the reference, GOT the output under test):
  max_abs_err = max |GOT - REF|
  max_rel_err = max |GOT - REF| / max |REF|
i.e. the relative error is normalised by the largest reference magnitude
(not element by element, which explodes near zero). Pass if max_rel_err <= T
(default 1e-4), shapes are equal, and neither array has NaN/Inf where the
other does not. Prints one line "<label>: ok|FAIL max_abs_err=... max_rel_err=..."
and exits 0 (pass), 1 (mismatch) or 2 (unreadable input).
"""
import sys

import numpy as np


def main(argv):
    args = argv[1:]
    tol, label = 1e-4, None
    pos = []
    i = 0
    while i < len(args):
        if args[i] == "--tol" and i + 1 < len(args):
            tol = float(args[i + 1])
            i += 2
        elif args[i] == "--label" and i + 1 < len(args):
            label = args[i + 1]
            i += 2
        else:
            pos.append(args[i])
            i += 1
    if len(pos) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    label = label or pos[0]
    try:
        got = np.load(pos[0])
        ref = np.load(pos[1])
    except Exception as e:  # noqa: BLE001 - any load error is a bad input
        print(f"{label}: FAIL cannot read: {e}")
        return 2
    if got.shape != ref.shape:
        print(f"{label}: FAIL shape {got.shape} vs reference {ref.shape}")
        return 1
    got = got.astype(np.float64)
    ref = ref.astype(np.float64)
    if not np.array_equal(np.isfinite(got), np.isfinite(ref)):
        print(f"{label}: FAIL non-finite values differ")
        return 1
    fin = np.isfinite(ref)
    if got.size == 0 or not fin.any():
        print(f"{label}: ok (no finite values to compare)")
        return 0
    diff = np.abs(got[fin] - ref[fin])
    max_abs = float(diff.max())
    scale = float(np.abs(ref[fin]).max())
    max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
    ok = max_rel <= tol
    print(f"{label}: {'ok' if ok else 'FAIL'} max_abs_err={max_abs:.3e} "
          f"max_rel_err={max_rel:.3e} (tol {tol:g}, max|ref|={scale:.3e})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
