/**
 * Kernel benchmark of the native backend: validate, then time, then print a table.
 *
 *   read probe   GB/s of plain memory reads (Σx, four rows at a time like a matvec) over a buffer 3× the L3
 *   gemm         GFLOP/s at 512³ and at the training shapes (B·T = 2048, C = 288, H = 768, V = 32000)
 *   matvec       GB/s of weight bytes for y = W·x (T = 1, decode) per weight dtype, and the share
 *                of the read probe's figure
 *   prefill      GFLOP/s of matmul with T = 64 rows for a few weight dtypes (quantized weights: int8
 *                activations and integer tiles; F16: decoded tiles and the f32 GEMM)
 *   attn         training attention forward + backward at T = 512 (stories15M heads), plain causal
 *                and packed rows of ~64-token segments (block-diagonal), timed alternately: ms per
 *                call pair, GFLOP/s of the work each needs, packed time as a share of causal time
 *
 * Each kernel is first checked against float64 values computed here (sampled outputs), then timed
 * with 1 and 2 threads. Figures are medians of repetitions (best in brackets); the machine is shared
 * and noisy, so compare numbers taken in one run.
 * Usage: node dist/bench/kernels.js [--full] [--threads=1,2] [--only=read,gemm,matvec,prefill,attn]
 * (or: npx tsx bench/kernels.ts). --full adds the vocabulary-sized shapes and more repetitions;
 * --only runs the named sections (matvec also runs the read probe it is compared with).
 * This file is not a test.
 */
import { randomFillSync } from 'node:crypto';
import { nativeBackend, nativeLoadError } from '../src/backend/native.js';
import { refBackend } from '../src/backend/ref.js';
import { packedLayout } from '../src/train/model.js';
import { q8RoundingBound } from '../src/backend/q8act.js';
import { DTYPE_LAYOUT, decodeRange, f32ToBf16, f32ToF16, type DType, type WeightTensor } from '../src/tensor.js';
import type { AttnShape, GemmLayout } from '../src/backend/types.js';
import { rand } from './util.js';

const argv = process.argv.slice(2);
const FULL = argv.includes('--full');
const THREADS = (argv.find((a) => a.startsWith('--threads='))?.slice(10) ?? '1,2').split(',').map(Number);
const ONLY = argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const want = (section: string) => !ONLY || ONLY.includes(section);
const TIME_MS = FULL ? 1500 : 400; // time budget per measurement
const MATVEC_BYTES = 96 << 20; // 3× a 32 MiB L3: weights come from DRAM

if (!nativeBackend) {
  console.error(`bench/kernels: the native addon is not available (${nativeLoadError})`);
  process.exit(1);
}
const nb = nativeBackend;

/** seconds per call: median and best over repetitions within the time budget (after one warm-up) */
function time(fn: () => void): { med: number; best: number } {
  fn();
  const ts: number[] = [];
  const end = performance.now() + TIME_MS;
  while (ts.length < 3 || (performance.now() < end && ts.length < 1000)) {
    const t0 = performance.now();
    fn();
    ts.push((performance.now() - t0) / 1e3);
  }
  ts.sort((a, b) => a - b);
  return { med: ts[Math.floor(ts.length / 2)]!, best: ts[0]! };
}

function fmt(v: number, digits = 1): string {
  return v.toFixed(digits).padStart(7);
}

const rows: string[][] = [];
function report(kernel: string, shape: string, perThread: string[], note = ''): void {
  const row = [kernel.padEnd(8), shape.padEnd(30), ...perThread.map((s) => s.padStart(18)), note];
  rows.push(row);
  console.log(row.join(' '));
}

console.log(`native backend: ISA ${nb.isa()} (supported: ${nb.supportedIsas().join(', ')}); threads ${THREADS.join(', ')}`);
console.log(`${'kernel'.padEnd(8)} ${'shape'.padEnd(30)} ${THREADS.map((t) => `${t} thread${t > 1 ? 's' : ''}`.padStart(18)).join(' ')}`);

// ---- read bandwidth probe
const probeGBs: number[] = [];
if (want('read') || want('matvec')) {
  const probeBuf = new Float32Array(MATVEC_BYTES / 4).fill(0.5);
  const probeSum = nb.readProbe(probeBuf, 1);
  if (probeSum !== probeBuf.length * 0.5) throw new Error(`read probe: Σx = ${probeSum}, want ${probeBuf.length * 0.5}`);
  report('read', `${MATVEC_BYTES >> 20} MiB, Σx (4-row f32 matvec)`, THREADS.map((th) => {
    nb.setThreads(th);
    const t = time(() => nb.readProbe(probeBuf, 1));
    probeGBs.push(MATVEC_BYTES / t.med / 1e9);
    return `${fmt(MATVEC_BYTES / t.med / 1e9)} (${fmt(MATVEC_BYTES / t.best / 1e9).trim()}) GB/s`;
  }));
}

// ---- GEMM
const gemmShapes: Array<[string, number, number, number, GemmLayout]> = [
  ['square', 512, 512, 512, 'NT'],
  ['fwd x·Wqᵀ', 2048, 288, 288, 'NT'],
  ['fwd x·W1ᵀ', 2048, 768, 288, 'NT'],
  ['fwd h·W2ᵀ', 2048, 288, 768, 'NT'],
  ['bwd dX = dY·W2', 2048, 768, 288, 'NN'],
  ['bwd dW2 = dYᵀ·h', 288, 768, 2048, 'TN'],
  ...(FULL ? [['fwd x·Wclsᵀ', 2048, 32000, 288, 'NT'], ['bwd dWcls', 32000, 288, 2048, 'TN']] as Array<[string, number, number, number, GemmLayout]> : []),
];
for (const [label, M, N, K, layout] of want('gemm') ? gemmShapes : []) {
  const a = rand(M * K, 1); // NT/NN: (M, K); TN: (K, M)
  const b = rand(N * K, 2); // NT: (N, K); NN/TN: (K, N)
  const c = new Float32Array(M * N);
  nb.gemm(c, a, b, M, N, K, layout, false);
  for (let s = 0; s < 64; s++) { // validate sampled outputs against float64 dots
    const m = (s * 7919) % M, n = (s * 104729) % N;
    let want = 0, mag = 0;
    for (let k = 0; k < K; k++) {
      const av = layout === 'TN' ? a[k * M + m]! : a[m * K + k]!;
      const bv = layout === 'NT' ? b[n * K + k]! : b[k * N + n]!;
      want += av * bv;
      mag += Math.abs(av * bv);
    }
    if (Math.abs(c[m * N + n]! - want) > 1e-5 * mag) throw new Error(`gemm ${label}: C[${m},${n}] = ${c[m * N + n]} but float64 gives ${want}`);
  }
  const flops = 2 * M * N * K;
  report('gemm', `${label} ${M}×${N}×${K} ${layout}`, THREADS.map((th) => {
    nb.setThreads(th);
    const t = time(() => nb.gemm(c, a, b, M, N, K, layout, false));
    return `${fmt(flops / t.med / 1e9)} (${fmt(flops / t.best / 1e9).trim()}) GF/s`;
  }));
}

// ---- matvec per dtype
/** random valid weights of ~MATVEC_BYTES: random bytes, every f16 scale set to a sane value */
function randomWeight(dtype: DType, K: number): WeightTensor {
  const { blockSize, typeSize } = DTYPE_LAYOUT[dtype];
  const rowBytes = (K / blockSize) * typeSize;
  const N = Math.floor(MATVEC_BYTES / rowBytes);
  const data = new Uint8Array(N * rowBytes);
  randomFillSync(data);
  const put = (p: number, h: number) => { data[p] = h & 0xff; data[p + 1] = h >> 8; };
  const scaleAt: Partial<Record<DType, number[]>> = {
    Q4_0: [0], Q4_1: [0, 2], Q5_0: [0], Q5_1: [0, 2], Q8_0: [0], Q2_K: [80, 82], Q3_K: [108], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208],
  };
  const nBlocks = data.length / typeSize;
  if (dtype === 'F32') {
    data.set(new Uint8Array(rand(data.length / 4, 3).buffer));
  } else if (dtype === 'F16' || dtype === 'BF16') {
    const h = new Uint16Array(data.buffer);
    for (let i = 0; i < h.length; i++) h[i] = dtype === 'F16' ? f32ToF16((i % 1999) / 1999 - 0.5) : f32ToBf16((i % 1999) / 1999 - 0.5);
  } else {
    const scale = f32ToF16(0.01);
    for (let b = 0; b < nBlocks; b++) for (const off of scaleAt[dtype]!) put(b * typeSize + off, scale);
  }
  return { dtype, shape: [N, K], data };
}

const MATVEC_DTYPES: DType[] = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K', 'Q3_K', 'Q2_K'];
const K = 4096;
for (const dtype of want('matvec') ? MATVEC_DTYPES : []) {
  const w = randomWeight(dtype, K);
  const N = w.shape[0]!;
  const x = rand(K, 5);
  const y = new Float32Array(N);
  nb.matmul(y, x, w, 1);
  const row = new Float32Array(K);
  for (const n of [0, 1, N >> 1, N - 1]) { // validate sampled rows against float64 dots of decoded rows
    decodeRange(w, n * K, K, row, 0);
    let want = 0, mag = 0;
    for (let k = 0; k < K; k++) { want += row[k]! * x[k]!; mag += Math.abs(row[k]! * x[k]!); }
    const tol = (nb.matmulUsesInt8(dtype, 1) ? q8RoundingBound(x, row, 1, K, 1)[0]! : 0) + 1e-5 * mag;
    if (!(Math.abs(y[n]! - want) <= tol)) throw new Error(`matvec ${dtype}: y[${n}] = ${y[n]} but float64 gives ${want} (tol ${tol})`);
  }
  const bytes = w.data.length;
  report('matvec', `${dtype} ${N}×${K} (${(bytes / 2 ** 20).toFixed(0)} MiB)`, THREADS.map((th, i) => {
    nb.setThreads(th);
    const t = time(() => nb.matmul(y, x, w, 1));
    const gbs = bytes / t.med / 1e9;
    return `${fmt(gbs)} GB/s ${fmt((100 * gbs) / probeGBs[i]!, 0).trim()}%`;
  }), nb.matmulUsesInt8(dtype, 1) ? 'int8 dot' : dtype === 'Q2_K' || dtype === 'Q3_K' ? 'decode+dot' : 'f32 dot');
}

// ---- prefill: T = 64 rows through the same weights
for (const dtype of want('prefill') ? ['F16', 'Q8_0', 'Q4_0', 'Q4_K'] as DType[] : []) {
  const Tp = 64, N = 4096;
  const full = randomWeight(dtype, K);
  const w: WeightTensor = { dtype, shape: [N, K], data: full.data.subarray(0, (N * full.data.length) / full.shape[0]!) };
  const x = rand(Tp * K, 6);
  const y = new Float32Array(Tp * N);
  nb.matmul(y, x, w, Tp);
  const row = new Float32Array(K);
  for (const [t, n] of [[0, 0], [Tp - 1, N - 1], [17, 1234]] as const) {
    decodeRange(w, n * K, K, row, 0);
    let want = 0, mag = 0;
    for (let k = 0; k < K; k++) { want += row[k]! * x[t * K + k]!; mag += Math.abs(row[k]! * x[t * K + k]!); }
    const xt = x.subarray(t * K, (t + 1) * K);
    const tol = (nb.matmulUsesInt8(dtype, Tp) ? q8RoundingBound(xt, row, 1, K, 1)[0]! : 0) + 1e-5 * mag;
    if (!(Math.abs(y[t * N + n]! - want) <= tol)) throw new Error(`prefill ${dtype}: y[${t},${n}] = ${y[t * N + n]} but float64 gives ${want} (tol ${tol})`);
  }
  const flops = 2 * Tp * N * K;
  report('prefill', `${dtype} T=${Tp} ${N}×${K}`, THREADS.map((th) => {
    nb.setThreads(th);
    const t = time(() => nb.matmul(y, x, w, Tp));
    return `${fmt(flops / t.med / 1e9)} (${fmt(flops / t.best / 1e9).trim()}) GF/s`;
  }), nb.matmulUsesInt8(dtype, Tp) ? 'int8 tiles' : 'decode tile + gemm');
}

// ---- training attention: plain causal vs packed rows (block-diagonal causal), forward + backward
if (want('attn')) {
  const Ta = 512, B = 4;
  const base: AttnShape = { B, T: Ta, NH: 6, NKV: 6, HS: 48 }; // (stories15M heads)
  const r = rand(B * 16, 7);
  const lengths = Array.from({ length: B }, (_, b) => { // segments of 33..96 tokens, the rest padding
    const row: number[] = [];
    for (let t = 0, i = 0; t + 96 <= Ta; i++) { const len = 33 + Math.floor((r[b * 16 + i]! + 0.5) * 64); row.push(len); t += len; }
    return row;
  });
  const packed: AttnShape = { ...base, starts: packedLayout(lengths, Ta).starts };
  const qn = B * Ta * base.NH * base.HS, kn = B * Ta * base.NKV * base.HS;
  const q = rand(qn, 11), k = rand(kn, 12), v = rand(kn, 13), dout = rand(qn, 14);
  const out = new Float32Array(qn), lse = new Float32Array(B * base.NH * Ta);
  const dq = new Float32Array(qn), dk = new Float32Array(kn), dv = new Float32Array(kn);
  const pair = (s: AttnShape) => { nb.attentionTrain(out, lse, q, k, v, s); nb.attentionTrainBackward(dq, dk, dv, dout, q, k, v, out, lse, s); };
  for (const s of [base, packed]) { // validate the forward of row 0 against the reference
    const one: AttnShape = { ...s, B: 1, ...(s.starts ? { starts: s.starts.subarray(0, Ta) } : {}) };
    const want0 = new Float32Array(qn / B), lse0 = new Float32Array(base.NH * Ta);
    refBackend.attentionTrain(want0, lse0, q, k, v, one);
    nb.attentionTrain(out, lse, q, k, v, s);
    for (let i = 0; i < want0.length; i++) {
      if (!(Math.abs(out[i]! - want0[i]!) <= 1e-5)) throw new Error(`attn ${s.starts ? 'packed' : 'causal'}: out[${i}] = ${out[i]} but the reference gives ${want0[i]}`);
    }
  }
  /** multiply-adds the masks keep: Σ over query rows of the keys each sees, × HS × heads × (2 fwd + 5 bwd) × 2 flops */
  const flopsOf = (s: AttnShape) => {
    let keys = 0;
    for (let n = 0; n < B * Ta; n++) keys += (n % Ta) + 1 - (s.starts ? s.starts[n]! : 0);
    return keys * base.HS * base.NH * 7 * 2;
  };
  // causal and packed calls alternate, so both see the same load on a shared machine
  const shapes = [base, packed];
  const timed = THREADS.map((th) => {
    nb.setThreads(th);
    const ts: number[][] = [[], []];
    const end = performance.now() + 2 * TIME_MS;
    while (ts[0]!.length < 5 || (performance.now() < end && ts[0]!.length < 500)) {
      shapes.forEach((s, i) => { const t0 = performance.now(); pair(s); ts[i]!.push(performance.now() - t0); });
    }
    return ts.map((x) => x.sort((a, b) => a - b)[Math.floor(x.length / 2)]!); // median ms of each
  });
  shapes.forEach((s, i) => report('attn', `${s.starts ? 'packed' : 'causal'} B=${B} T=${Ta} 6×48${s.starts ? ' segs~64' : ''}`,
    timed.map((m) => `${fmt(m[i]!)} ms ${fmt(flopsOf(s) / m[i]! / 1e6).trim()} GF/s`), 'fwd+bwd, median'));
  report('attn', 'packed / causal time', timed.map((m) => `${fmt((100 * m[1]!) / m[0]!, 0)}%`));
}
nb.setThreads(Math.max(...THREADS));
