#!/usr/bin/env node
// ort_run.js - run an ONNX model with ONNX Runtime (npm onnxruntime-node), the
// independent reference for qforge's float runtime.
//
// Usage: [QF_ORT_UNFUSED=1] node tests/node/ort_run.js MODEL.onnx IN.npy OUT.npy
// Feeds IN.npy to the model's first input and writes its first output to
// OUT.npy. Only little-endian float32, C-order NPY files are handled: that
// is all the model suite needs.
'use strict';

const fs = require('fs');
const path = require('path');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));

const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

function readNpyF32(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(NPY_MAGIC)) {
    throw new Error(`${file}: not an NPY file`);
  }
  const major = buf[6];
  let hlen;
  let off;
  if (major === 1) {
    hlen = buf.readUInt16LE(8);
    off = 10;
  } else if (major === 2 || major === 3) {
    hlen = buf.readUInt32LE(8);
    off = 12;
  } else {
    throw new Error(`${file}: NPY version ${major} not supported`);
  }
  const header = buf.toString('latin1', off, off + hlen);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) throw new Error(`${file}: bad NPY header`);
  if (descr[1] !== '<f4') throw new Error(`${file}: dtype ${descr[1]}, only <f4 handled`);
  if (fortran[1] !== 'False') throw new Error(`${file}: Fortran order not handled`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0)
    .map((s) => parseInt(s, 10));
  const count = dims.reduce((a, b) => a * b, 1);
  const start = off + hlen;
  if (buf.length - start < count * 4) throw new Error(`${file}: truncated data`);
  // Copy into an aligned Float32Array (the data offset need not be 4-aligned).
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = buf.readFloatLE(start + 4 * i);
  return { dims, data };
}

function writeNpyF32(file, dims, data) {
  const shapeStr = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  // Version 1.0: pad with spaces so magic+version+len+header is 64-aligned.
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  NPY_MAGIC.copy(head, 0);
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.alloc(data.length * 4);
  for (let i = 0; i < data.length; i++) body.writeFloatLE(data[i], 4 * i);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), body]));
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length !== 3) {
    process.stderr.write('usage: node ort_run.js MODEL.onnx IN.npy OUT.npy\n');
    process.exit(2);
  }
  const [modelPath, inPath, outPath] = args;
  const x = readNpyF32(inPath);
  // QF_ORT_UNFUSED=1: no graph optimizations, so a QDQ model runs as written
  // (DequantizeLinear, the float op, QuantizeLinear) instead of ONNX
  // Runtime's fused integer kernels. The tests set it on CPUs without VNNI,
  // where those kernels' vpmaddubsw pair sums saturate (ONNX Runtime's
  // documented u8s8 limitation) and so are no reference.
  const opts = { intraOpNumThreads: 2, interOpNumThreads: 1 };
  if (process.env.QF_ORT_UNFUSED === '1') opts.graphOptimizationLevel = 'disabled';
  const session = await ort.InferenceSession.create(modelPath, opts);
  const feeds = {};
  feeds[session.inputNames[0]] = new ort.Tensor('float32', x.data, x.dims);
  const results = await session.run(feeds);
  const y = results[session.outputNames[0]];
  if (y.type !== 'float32') throw new Error(`output type ${y.type}, only float32 handled`);
  writeNpyF32(outPath, y.dims, y.data);
}

main().catch((e) => {
  process.stderr.write(`ort_run: ${e.message}\n`);
  process.exit(1);
});
