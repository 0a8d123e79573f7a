#!/usr/bin/python3
"""Turn the raw results of bench/run.sh into BENCHMARKS.md.

Usage: /usr/bin/python3 bench/report.py --results R.jsonl --dir BENCH_DIR
           --command CMD --settings TEXT [--quick 0|1] -o BENCHMARKS.md

R.jsonl holds one line per measurement: {"model", "engine" (qforge|ort),
"precision" (fp32|int8|int8r7), "batch", "threads", "rep", "result": <the JSON of
`qforge bench --json` or tests/node/ort_bench.js>} or "error" instead of
"result". Each cell of the report is the median over repetitions of the
per-process median latency (and of p10/p90); throughput is batch / that median.

BENCH_DIR also holds gemm_peak.txt (bench/gemm_peak's output, verbatim in the
report), mem.txt (/usr/bin/time -v of `qforge run` on mobilenetv2.qfm),
mem_arena.json (`qforge bench --json` of the same model: the planned arena)
and the models (multiply-accumulate counts come from the float ONNX files;
packed weight bytes from the qfm's TENSOR_DATA section).
"""
import argparse
import datetime
import json
import os
import re
import statistics
import struct
import subprocess
from collections import defaultdict

ENGINES = (("qforge", "fp32"), ("qforge", "int8"), ("ort", "fp32"), ("ort", "int8"))
# "int8r7": the int8 engines on the model quantized with --reduce-range (7-bit
# weights), measured on CPUs without VNNI (bench/run.sh BENCH_R7)
LABEL = {("qforge", "fp32"): "qforge fp32", ("qforge", "int8"): "qforge int8",
         ("ort", "fp32"): "ORT fp32", ("ort", "int8"): "ORT int8"}
MODEL_TITLE = {"fmnist_cnn": "Small CNN (PTQ issue, 28x28x1)",
               "fmnist_resnet": "Small ResNet (PTQ issue, 28x28x1)",
               "mobilenetv2": "MobileNetV2 (224x224)", "resnet18": "ResNet-18 (224x224)",
               "squeezenet11": "SqueezeNet 1.1 (224x224)",
               "alexnet": "AlexNet, Keras definition of issue 4 (227x227)"}
QFM_TENSOR_DATA = 8
MIB = 1024 * 1024


def cpu_info():
    info = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            info[k.strip()] = v.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return info


def load_results(path):
    cells = defaultdict(list)  # (model, batch, threads, engine, prec) -> [result]
    errors = defaultdict(list)
    order = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            key = (r["model"], r["batch"], r["threads"], r["engine"], r["precision"])
            if r["model"] not in order:
                order.append(r["model"])
            if "result" in r:
                cells[key].append(dict(r["result"], rep=r.get("rep")))
            else:
                errors[key].append(r["error"])
    return cells, errors, order


def paired_ratios(qf, ort):
    """ORT/qforge latency ratio of each repetition that measured both (the
    int8 pair runs back to back), sorted."""
    o = {r["rep"]: r["median_ms"] for r in ort if r.get("rep") is not None}
    return sorted(o[r["rep"]] / r["median_ms"] for r in qf
                  if r.get("rep") in o and r["median_ms"] > 0)


def summarize(results):
    if not results:
        return None
    med = statistics.median(r["median_ms"] for r in results)
    return {"median_ms": med,
            "p10_ms": statistics.median(r["p10_ms"] for r in results),
            "p90_ms": statistics.median(r["p90_ms"] for r in results),
            "reps": len(results),
            "runs": sum(r["iters"] for r in results),
            "arena": max((r.get("arena_bytes", 0) for r in results), default=0),
            "rss": max((r.get("peak_rss_bytes", 0) for r in results), default=0)}


def model_macs(path):
    """Multiply-accumulates of one batch-1 inference (Conv, Gemm, MatMul)."""
    try:
        import onnx
        from onnx import shape_inference
    except ImportError:
        return None
    m = onnx.load(path)
    for inp in m.graph.input:
        dims = inp.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].dim_value = 1
    for out in m.graph.output:
        dims = out.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].dim_value = 1
    m = shape_inference.infer_shapes(m)
    shapes = {}
    for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        shapes[vi.name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    for init in m.graph.initializer:
        shapes[init.name] = list(init.dims)
    total = 0
    for n in m.graph.node:
        if n.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        out = shapes.get(n.output[0])
        w = shapes.get(n.input[1])
        a = shapes.get(n.input[0])
        if not out or not w or not a or 0 in out:
            return None
        numel = 1
        for d in out:
            numel *= d
        if n.op_type == "Conv":
            k = 1
            for d in w[1:]:
                k *= d  # Cin/group * kh * kw
        elif n.op_type == "Gemm":
            trans_a = any(at.name == "transA" and at.i for at in n.attribute)
            k = a[0] if trans_a else a[-1]
        else:
            k = a[-1]
        total += numel * k
    return total


def qfm_tensor_bytes(path):
    """Size of the TENSOR_DATA section (weights, biases, constants) of a .qfm."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            count, = struct.unpack_from("<I", head, 20)
            table, = struct.unpack_from("<Q", head, 24)
            f.seek(table)
            tab = f.read(32 * count)
    except (OSError, struct.error):
        return None
    for i in range(count):
        kind, flags, _off, size = struct.unpack_from("<IIQQ", tab, 32 * i)
        if kind == QFM_TENSOR_DATA:
            return size, bool(flags & 2)
    return None


def table_rows(text):
    """Cells of the markdown table rows in gemm_peak's output."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|") and not line.startswith("|---"):
            yield [c.strip() for c in line.strip("|").split("|")]


def parse_peak(text):
    """The 2-thread int8 peak in GMAC/s: gemm_peak's peak table row
    "| avx512vnni | 2 | GMAC/s | ..." (AVX2's when there is no VNNI row).
    BENCH_PEAK_GMACS overrides."""
    env = os.environ.get("BENCH_PEAK_GMACS")
    if env:
        return float(env), "BENCH_PEAK_GMACS"
    found = {}
    for c in table_rows(text):
        if len(c) == 5 and c[1] == "2":
            try:
                found[c[0]] = float(c[2])
            except ValueError:
                pass
    for isa in ("avx512vnni", "avx2"):
        if isa in found:
            return found[isa], f"gemm_peak, {isa}, 2 threads"
    return None, None


def parse_gemm512(text):
    """{threads: percent of peak} of the VNNI 512x512x512 GEMM rows."""
    out = {}
    for c in table_rows(text):
        if len(c) >= 6 and c[0] == "avx512vnni" and c[1] == "gemm 512x512x512":
            try:
                out[int(c[2])] = float(c[5].rstrip("%"))
            except ValueError:
                pass
    return out


def fmt_ms(ms):
    return f"{ms:.3g}" if ms < 10 else f"{ms:.0f}" if ms >= 1000 else f"{ms:.1f}"


def fmt_rate(x):
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--settings", default="")
    ap.add_argument("--quick", default="0")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()

    cells, errors, models = load_results(args.results)
    summary = {k: summarize(v) for k, v in cells.items()}
    batches = sorted({k[1] for k in cells} | {k[1] for k in errors})
    threads = sorted({k[2] for k in cells} | {k[2] for k in errors})
    big = max(batches) if batches else 64
    cpu = cpu_info()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    ort_version = next((r["runtime"] for v in cells.values() for r in v
                        if r.get("runtime", "").startswith("onnxruntime")), "onnxruntime-node")
    gemm_text = ""
    gp = os.path.join(args.dir, "gemm_peak.txt")
    if os.path.exists(gp):
        gemm_text = open(gp).read().strip()
    peak, peak_src = parse_peak(gemm_text)
    macs = {}
    for m in models:
        p = os.path.join(args.dir, m + ".onnx")
        macs[m] = model_macs(p) if os.path.exists(p) else None

    def cell(m, b, t, eng):
        return summary.get((m, b, t) + eng)

    def rate(m, b, t, eng):
        s = cell(m, b, t, eng)
        return b * 1e3 / s["median_ms"] if s else None

    L = []
    L.append("# qforge benchmarks\n")
    L.append("Generated by `bench/run.sh` (`make bench`); do not edit by hand, rerun it.\n")
    L.append("| | |\n|---|---|")
    L.append(f"| CPU | {cpu.get('Model name', '?')} ({cpu.get('CPU(s)', '?')} logical CPUs"
             f", {cpu.get('Thread(s) per core', '?')} thread(s) per core) |")
    flags = cpu.get("Flags", "")
    isa = [f for f in ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni")
           if re.search(r"\b%s\b" % f, flags)]
    L.append(f"| ISA | {' '.join(isa) or '?'} |")
    L.append(f"| date | {now} |")
    L.append(f"| command | `{args.command}` |")
    L.append(f"| settings | {args.settings} |")
    L.append(f"| ONNX Runtime | {ort_version} (intraOpNumThreads = threads, interOpNumThreads 1, "
             "graphOptimizationLevel all, sequential) |")
    L.append("| models | random weights (seeded, bench/make_models.py), opset 13, dynamic batch; "
             "int8 = `qforge quantize --method minmax` on 8 random-normal images, ORT int8 = "
             "`qforge export --format onnx` (QDQ, uint8 activations) |")
    L.append("")
    if args.quick == "1":
        L.append(f"**Quick mode** (`BENCH_QUICK=1`): batch {big} stands in for batch 64 and "
                 "fewer repetitions are taken; the targets below are judged on it only as an "
                 "indication.\n")
    note = os.environ.get("BENCH_NOTE")
    if note:
        L.append(f"**Note:** {note}\n")
    L.append("Each cell: median latency over repetitions of each process's median (ms) and "
             "throughput (items/s = batch / median). The four engines of a row ran back to "
             "back in every repetition (round-robin), so noise hits them alike; the two int8 "
             "engines ran next to each other, in alternating order from one repetition to the "
             "next. The targets are judged on the ratio of the two medians; the ratio of each "
             "repetition's adjacent pair (median and range) is shown beside it to tell the "
             "machine's drift from a real difference.\n")

    # ---- targets ----
    L.append("## Targets of issue 5 (2 threads)\n")
    L.append("| target | measured | status |\n|---|---|---|")
    t2 = 2 if 2 in threads else (max(threads) if threads else 2)

    def speed_target(m, b, prec, what):
        q, o = rate(m, b, t2, ("qforge", prec)), rate(m, b, t2, ("ort", prec))
        if q is None or o is None:
            L.append(f"| {m} batch {b}{what}: qforge int8 >= 1.3x ORT int8 | no measurement | "
                     "**missed** (did not run) |")
            return
        ratio = q / o
        status = "met" if ratio >= 1.3 else f"**missed** (needs {1.3 / ratio:.2f}x more)"
        extra = ""
        if peak and macs.get(m):
            ort_frac = o * macs[m] / 1e9 / peak
            q_frac = q * macs[m] / 1e9 / peak
            extra = f"; ORT at {100 * ort_frac:.0f}% of peak, qforge {100 * q_frac:.0f}%"
            if ort_frac > 0.65 and ratio < 1.3:
                status = "met (peak clause)" if q_frac >= 0.85 else \
                    f"**missed** (peak clause: {100 * q_frac:.0f}% < 85%)"
        pr = paired_ratios(cells.get((m, b, t2, "qforge", prec), []),
                           cells.get((m, b, t2, "ort", prec), []))
        if len(pr) > 1:
            extra += (f"; per repetition {statistics.median(pr):.2f}x, "
                      f"{pr[0]:.2f}-{pr[-1]:.2f}x")
        L.append(f"| {m} batch {b}{what}: qforge int8 >= 1.3x ORT int8 | {ratio:.2f}x "
                 f"({fmt_rate(q)} vs {fmt_rate(o)} items/s{extra}) | {status} |")

    has_r7 = any(k[4] == "int8r7" and k[2] == t2 for k in cells)
    for m in models:
        for b in batches:
            speed_target(m, b, "int8", "")
    if has_r7:
        for m in models:
            for b in batches:
                speed_target(m, b, "int8r7", ", 7-bit weights")
    for prec, what in (("int8", ""), ("int8r7", ", 7-bit weights")):
        if prec == "int8r7" and not has_r7:
            continue
        for m in ("resnet18", "alexnet"):
            if m not in models:
                continue
            q8, q32 = rate(m, big, t2, ("qforge", prec)), rate(m, big, t2, ("qforge", "fp32"))
            o8, o32 = rate(m, big, t2, ("ort", prec)), rate(m, big, t2, ("ort", "fp32"))
            if q8 is None or q32 is None:
                L.append(f"| {m} batch {big}{what}: qforge int8 >= 3x qforge fp32 | "
                         "no measurement | **missed** |")
                continue
            r = q8 / q32
            ort_r = f"; ORT int8/fp32 {o8 / o32:.2f}x" if o8 and o32 else ""
            status = "met" if r >= 3 else f"**missed** (needs {3 / r:.2f}x more)"
            L.append(f"| {m} batch {big}{what}: qforge int8 >= 3x qforge fp32 | {r:.2f}x{ort_r} | "
                     f"{status} |")
    g512 = parse_gemm512(gemm_text)
    if g512:
        v = g512.get(2, max(g512.values()))
        shown = ", ".join(f"{t} thread{'s' if t > 1 else ''}: {p:.0f}%"
                          for t, p in sorted(g512.items()))
        status = "met" if v >= 70 else f"**missed** (by {70 - v:.0f} points)"
        L.append(f"| VNNI GEMM microkernel >= 70% of peak (512x512x512) | {shown} | "
                 f"{status} |")
    else:
        L.append("| VNNI GEMM microkernel >= 70% of peak (512x512x512) | "
                 f"{'see the GEMM peak section' if gemm_text else 'bench/gemm_peak not built'}"
                 " | not judged here |")
    L.append("| integer results identical across ISAs and 1/2 threads | a test "
             "(tests/test_x86_kernels.c), not a benchmark | see `make check` |")
    mem_line = memory_target(args.dir)
    if mem_line:
        L.append(mem_line[0])
    L.append("")

    # ---- per-model tables ----
    L.append("## Latency and throughput\n")
    for m in models:
        title = MODEL_TITLE.get(m, m)
        mac = macs.get(m)
        L.append(f"### {title}\n")
        if mac:
            L.append(f"{mac / 1e6:.1f} M multiply-accumulates per image (Conv/Gemm/MatMul).\n")
        L.append("| batch | threads | " + " | ".join(LABEL[e] for e in ENGINES) +
                 " | int8 qforge/ORT | qforge int8/fp32 |")
        L.append("|---:|---:|" + "---:|" * (len(ENGINES) + 2))
        for b in batches:
            for t in threads:
                row = [str(b), str(t)]
                for e in ENGINES:
                    s = cell(m, b, t, e)
                    if s:
                        per_s = fmt_rate(b * 1e3 / s["median_ms"])
                        row.append(f"{fmt_ms(s['median_ms'])} ms · {per_s}/s")
                    elif errors.get((m, b, t) + e):
                        row.append("failed")
                    else:
                        row.append("—")
                q8, o8 = rate(m, b, t, ("qforge", "int8")), rate(m, b, t, ("ort", "int8"))
                q32 = rate(m, b, t, ("qforge", "fp32"))
                row.append(f"{q8 / o8:.2f}x" if q8 and o8 else "—")
                row.append(f"{q8 / q32:.2f}x" if q8 and q32 else "—")
                L.append("| " + " | ".join(row) + " |")
        L.append("")
        spread = []
        for b in batches:
            for t in threads:
                parts = []
                for e in ENGINES:
                    s = cell(m, b, t, e)
                    if s:
                        parts.append(f"{LABEL[e]} {fmt_ms(s['p10_ms'])}–{fmt_ms(s['p90_ms'])}"
                                     f" ({s['runs']} runs)")
                if parts:
                    spread.append(f"b{b}/t{t}: " + ", ".join(parts))
        if spread:
            L.append("<details><summary>p10–p90 latency (ms) and timed runs</summary>\n")
            L.extend(f"- {s}" for s in spread)
            L.append("\n</details>\n")
        arenas = []
        for b in batches:
            for e in (("qforge", "fp32"), ("qforge", "int8")):
                s = cell(m, b, t2, e)
                if s and s["arena"]:
                    arenas.append(f"{LABEL[e]} b{b}: arena {s['arena'] / MIB:.1f} MiB, "
                                  f"peak RSS {s['rss'] / MIB:.0f} MiB")
        if arenas:
            L.append("Memory (qforge bench, 2 threads): " + "; ".join(arenas) + ".\n")

    # ---- 7-bit weights ----
    r7_threads = sorted({k[2] for k in cells if k[4] == "int8r7"})
    if r7_threads:
        L.append("## 7-bit weights (`qforge quantize --reduce-range`)\n")
        L.append("On a CPU without VNNI, AVX2's `vpmaddubsw` adds two byte products in "
                 "saturating 16 bits. With 8-bit weights qforge keeps it exact by splitting "
                 "the weight pairs that could saturate into a clamped part and a sparse fix "
                 "(`x86 avx2 split` in `qforge bench --profile`), or, where too many pairs "
                 "need one, by multiplying |activation| by the weight with the activation's "
                 "sign (`x86 avx2 sign`, about 1.45x the plain form's time); ONNX Runtime's "
                 "fused kernels let it saturate. `--reduce-range` (ONNX Runtime's option of "
                 "the same name) quantizes weights to 7 bits, within +-63, which no pair can "
                 "saturate, so every layer runs plain `vpmaddubsw`. Both engines run the same "
                 "7-bit model here (its qfm and its QDQ export), in adjacent, alternating "
                 "order; the 8-bit column repeats the table above.\n")
        L.append("| model | batch | threads | qforge int8 (8-bit weights) | qforge int8 "
                 "(7-bit) | ORT int8 (7-bit) | 7-bit qforge/ORT | qforge 7-bit/8-bit |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for m in models:
            for b in batches:
                for t in r7_threads:
                    row = [m, str(b), str(t)]
                    for e in (("qforge", "int8"), ("qforge", "int8r7"), ("ort", "int8r7")):
                        s = cell(m, b, t, e)
                        if s:
                            row.append(f"{fmt_ms(s['median_ms'])} ms · "
                                       f"{fmt_rate(b * 1e3 / s['median_ms'])}/s")
                        else:
                            row.append("failed" if errors.get((m, b, t) + e) else "—")
                    q8 = rate(m, b, t, ("qforge", "int8"))
                    q7, o7 = rate(m, b, t, ("qforge", "int8r7")), rate(m, b, t, ("ort", "int8r7"))
                    row.append(f"{q7 / o7:.2f}x" if q7 and o7 else "—")
                    row.append(f"{q7 / q8:.2f}x" if q7 and q8 else "—")
                    L.append("| " + " | ".join(row) + " |")
        L.append("")

    # ---- errors ----
    if errors:
        L.append("## Failed measurements\n")
        seen = set()
        for k, v in sorted(errors.items()):
            msg = v[0].strip()
            key = (k[0], k[3], k[4], msg)
            if key in seen:
                continue
            seen.add(key)
            L.append(f"- {k[0]} {k[3]} {k[4]} (batch {k[1]}, {k[2]} threads, and possibly "
                     f"others): `{msg[:300]}`")
        L.append("")

    # ---- gemm peak ----
    L.append("## int8 GEMM peak (bench/gemm_peak)\n")
    if gemm_text and "|---" in gemm_text:
        # gemm_peak prints markdown: keep its tables, one heading level down
        L.append(re.sub(r"^## ", "### ", gemm_text, flags=re.M) + "\n")
    elif gemm_text:
        L.append("```\n" + gemm_text + "\n```\n")
        if peak:
            L.append(f"2-thread int8 peak used above: {peak:.0f} GMAC/s (from {peak_src}).\n")
    else:
        L.append("bench/gemm_peak.c is not in the tree yet (or did not build), so the peak "
                 "table and the \"65% of peak\" clause could not be evaluated.\n")

    # ---- memory ----
    if mem_line:
        L.append("## Peak memory of `qforge run` (MobileNetV2 int8, batch 1, 1 thread)\n")
        L.append(mem_line[1] + "\n")

    notes = os.environ.get("BENCH_NOTES_FILE")
    if notes and os.path.exists(notes):
        L.append("## Notes on this run\n")
        L.append(open(notes).read().strip() + "\n")

    with open(args.output + ".tmp", "w") as f:
        f.write("\n".join(L).rstrip() + "\n")
    os.replace(args.output + ".tmp", args.output)


def memory_target(d):
    mem = os.path.join(d, "mem.txt")
    if not os.path.exists(mem) or not os.path.getsize(mem):
        return None
    text = open(mem).read()
    m = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", text)
    if not m:
        return None
    rss = int(m.group(1)) * 1024
    arena = None
    try:
        aj = json.load(open(os.path.join(d, "mem_arena.json")))
        # the planned memory: activation arena + kernel scratch (both fixed
        # when the session plans; a run allocates neither)
        arena = aj["arena_bytes"] + aj.get("scratch_bytes", 0)
    except (OSError, ValueError, KeyError):
        pass
    base = None
    try:
        mb = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)",
                       open(os.path.join(d, "mem_base.txt")).read())
        base = int(mb.group(1)) * 1024 if mb else None
    except OSError:
        pass
    tb = qfm_tensor_bytes(os.path.join(d, "mobilenetv2.qfm"))
    if arena is None or tb is None:
        return (f"| peak memory of qforge run (MobileNetV2 int8) | {rss / MIB:.1f} MiB | "
                "not judged (arena or weight size unknown) |", f"Max RSS {rss / MIB:.1f} MiB.")
    weights, zstd = tb
    budget = weights + arena + 5 * MIB
    ok = rss <= budget
    status = "met" if ok else f"**missed** (by {(rss - budget) / MIB:.1f} MiB)"
    row = (f"| peak memory of qforge run on MobileNetV2 int8 <= weights + arena + 5 MiB | "
           f"{rss / MIB:.1f} MiB vs {budget / MIB:.1f} MiB | {status} |")
    detail = (f"`/usr/bin/time -v qforge run mobilenetv2.qfm --input x.npy -o y.npy`: max RSS "
              f"{rss / MIB:.1f} MiB. Budget: weights {weights / MIB:.2f} MiB (TENSOR_DATA "
              f"section of the .qfm{', zstd-compressed size' if zstd else ''}) + planned arena and kernel scratch "
              f"{arena / MIB:.2f} MiB + 5 MiB = {budget / MIB:.2f} MiB. The RSS includes the "
              "binary, shared libraries (OpenBLAS, protobuf-c, ...), the input and output arrays.")
    if base:
        detail += (f" For scale, `qforge --version` alone peaks at {base / MIB:.1f} MiB, so the "
                   f"model and its run add {(rss - base) / MIB:.1f} MiB to the process.")
    return row, detail


if __name__ == "__main__":
    main()
