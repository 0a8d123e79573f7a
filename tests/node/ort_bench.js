#!/usr/bin/env node
// ort_bench.js - time an ONNX model in ONNX Runtime (npm onnxruntime-node), the
// baseline that `qforge bench` is compared with in `make bench`.
//
// Usage: node tests/node/ort_bench.js MODEL.onnx [--batch N] [--threads T]
//            [--warmup W] [--iters I | --seconds S] [--seed K]
// Session: intraOpNumThreads T, interOpNumThreads 1, graphOptimizationLevel
// 'all', executionMode 'sequential' (so T is the whole thread budget, like
// qforge's --threads). Every input gets random data of its declared shape with
// the first axis set to N (float inputs: unit normal; integer inputs: zeros);
// a model whose first axis is fixed to another value is an error (exit 2).
// Prints one JSON object: median, p10, p90 (ms, linear interpolation between
// ranks, as qforge bench computes them), items/s (N / median) and friends.
'use strict';

const path = require('path');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));

function usage(msg) {
  if (msg) process.stderr.write(`ort_bench: ${msg}\n`);
  process.stderr.write('usage: node ort_bench.js MODEL.onnx [--batch N] [--threads T] ' +
    '[--warmup W] [--iters I | --seconds S] [--seed K]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { batch: 1, threads: 1, warmup: 2, iters: 0, seconds: 3, seed: 1, model: null };
  const numeric = { '--batch': 'batch', '--threads': 'threads', '--warmup': 'warmup',
    '--iters': 'iters', '--seconds': 'seconds', '--seed': 'seed' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') usage();
    if (numeric[a]) {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v < 0) usage(`${a} wants a non-negative number`);
      o[numeric[a]] = v;
    } else if (a.startsWith('-')) {
      usage(`unknown option ${a}`);
    } else if (o.model === null) {
      o.model = a;
    } else {
      usage('one model only');
    }
  }
  if (o.model === null) usage('no model given');
  if (o.batch < 1 || o.threads < 1) usage('--batch and --threads must be >= 1');
  return o;
}

// mulberry32 + Box-Muller: plausible activations, reproducible per seed.
function makeRng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
}

function makeInput(meta, batch, rng) {
  if (!meta.isTensor) throw new Error(`input '${meta.name}' is not a tensor`);
  const dims = meta.shape.map((d, i) => {
    if (i === 0) {
      if (typeof d === 'number' && d > 0 && d !== batch) {
        const e = new Error(`input '${meta.name}' has a fixed batch of ${d}, asked for ${batch}`);
        e.usage = true;
        throw e;
      }
      return batch;
    }
    if (typeof d !== 'number' || d < 0) {
      const e = new Error(`input '${meta.name}' has a dynamic axis ${i}; only axis 0 is set`);
      e.usage = true;
      throw e;
    }
    return d;
  });
  const n = dims.reduce((a, b) => a * b, 1);
  switch (meta.type) {
    case 'float32': {
      const x = new Float32Array(n);
      for (let i = 0; i < n; i += 2) {
        const r = Math.sqrt(-2 * Math.log(rng()));
        const a = 2 * Math.PI * rng();
        x[i] = r * Math.cos(a);
        if (i + 1 < n) x[i + 1] = r * Math.sin(a);
      }
      return new ort.Tensor('float32', x, dims);
    }
    case 'uint8': case 'int8': {
      const x = meta.type === 'uint8' ? new Uint8Array(n) : new Int8Array(n);
      for (let i = 0; i < n; i++) x[i] = Math.floor(rng() * 256) - (meta.type === 'int8' ? 128 : 0);
      return new ort.Tensor(meta.type, x, dims);
    }
    case 'int64':
      return new ort.Tensor('int64', new BigInt64Array(n), dims);
    case 'int32':
      return new ort.Tensor('int32', new Int32Array(n), dims);
    default: {
      const e = new Error(`input '${meta.name}' has type ${meta.type}, ` +
        'which ort_bench cannot fill');
      e.usage = true;
      throw e;
    }
  }
}

function percentile(sorted, q) {
  const n = sorted.length;
  if (n === 1) return sorted[0];
  const pos = q * (n - 1);
  const lo = Math.floor(pos);
  if (lo >= n - 1) return sorted[n - 1];
  return sorted[lo] + (pos - lo) * (sorted[lo + 1] - sorted[lo]);
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const t0 = nowMs();
  const session = await ort.InferenceSession.create(o.model, {
    intraOpNumThreads: o.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  const loadMs = nowMs() - t0;
  const rng = makeRng(o.seed);
  const feeds = {};
  const inputs = [];
  for (const meta of session.inputMetadata) {
    feeds[meta.name] = makeInput(meta, o.batch, rng);
    inputs.push({ name: meta.name, dtype: meta.type, shape: feeds[meta.name].dims });
  }
  let firstMs = 0;
  for (let w = 0; w < o.warmup; w++) {
    const s = nowMs();
    await session.run(feeds);
    if (w === 0) firstMs = nowMs() - s;
  }
  const ms = [];
  const start = nowMs();
  for (;;) {
    if (o.iters > 0 && ms.length >= o.iters) break;
    if (o.iters <= 0 && ms.length >= 1 && nowMs() - start >= 1e3 * o.seconds) break;
    const s = nowMs();
    await session.run(feeds);
    ms.push(nowMs() - s);
    // without warm-up the first timed run is also the session's first run
    if (ms.length === 1 && o.warmup === 0) firstMs = ms[0];
  }
  const totalS = (nowMs() - start) / 1e3;
  const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
  ms.sort((a, b) => a - b);
  const median = percentile(ms, 0.5);
  const r = {
    model: o.model,
    runtime: 'onnxruntime-node ' + (ort.env.versions ? ort.env.versions.common : ''),
    batch: o.batch,
    threads: o.threads,
    warmup: o.warmup,
    iters: ms.length,
    inputs,
    load_ms: +loadMs.toFixed(3),
    first_run_ms: +firstMs.toFixed(3),
    median_ms: +median.toPrecision(9),
    p10_ms: +percentile(ms, 0.1).toPrecision(9),
    p90_ms: +percentile(ms, 0.9).toPrecision(9),
    mean_ms: +mean.toPrecision(9),
    min_ms: +ms[0].toPrecision(9),
    max_ms: +ms[ms.length - 1].toPrecision(9),
    items_per_s: +(o.batch * 1e3 / median).toPrecision(9),
    total_s: +totalS.toFixed(3),
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
  };
  process.stdout.write(JSON.stringify(r) + '\n');
}

main().catch((e) => {
  process.stderr.write(`ort_bench: ${e.message}\n`);
  process.exit(e.usage ? 2 : 1);
});
