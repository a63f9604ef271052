/** Sampler: each filter against its definition, reproducibility by seed, and range errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sampler, Rng, argmax, nucleusBound, kthSmallest } from '../src/generate/sampler.js';
import { Llama2Error } from '../src/util/errors.js';
import { nativeBackend } from '../src/backend/native.js';

const logits = Float32Array.from([1.0, 3.0, 2.5, -1.0, 0.5, 2.9]);

function freq(s: Sampler, n: number, V: number): number[] {
  const c = new Array<number>(V).fill(0);
  for (let i = 0; i < n; i++) c[s.sample(logits)]! += 1;
  return c.map((x) => x / n);
}

function softmax(x: ArrayLike<number>, T: number): number[] {
  const m = Math.max(...Array.from(x));
  const e = Array.from(x, (v) => Math.exp((v - m) / T));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

test('temperature 0 is argmax, whatever the seed', () => {
  for (const seed of [0, 1, 99]) assert.equal(new Sampler({ temperature: 0, seed }).sample(logits), 1);
  assert.equal(argmax(logits), 1);
});

test('same seed gives the same draws, different seeds differ', () => {
  const draw = (seed: number) => Array.from({ length: 50 }, ((s) => () => s.sample(logits))(new Sampler({ temperature: 1, topP: 1, seed })));
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
});

test('Rng is uniform enough (mean and bucket counts)', () => {
  const r = new Rng(123);
  const buckets = new Array<number>(10).fill(0);
  let sum = 0;
  const N = 100000;
  for (let i = 0; i < N; i++) {
    const u = r.next();
    assert.ok(u >= 0 && u < 1);
    sum += u;
    buckets[Math.floor(u * 10)]! += 1;
  }
  assert.ok(Math.abs(sum / N - 0.5) < 0.01);
  for (const b of buckets) assert.ok(Math.abs(b / N - 0.1) < 0.01, `bucket ${b / N}`);
});

test('plain temperature sampling follows softmax(logits / T)', () => {
  const T = 0.8;
  const f = freq(new Sampler({ temperature: T, topP: 1, seed: 3 }), 40000, logits.length);
  const p = softmax(logits, T);
  for (let i = 0; i < p.length; i++) assert.ok(Math.abs(f[i]! - p[i]!) < 0.012, `token ${i}: ${f[i]} vs ${p[i]}`);
});

test('top-k keeps the k most likely tokens, renormalised', () => {
  const f = freq(new Sampler({ temperature: 1, topP: 1, topK: 2, seed: 5 }), 20000, logits.length);
  const p = softmax([3.0, 2.9], 1);
  assert.ok(Math.abs(f[1]! - p[0]!) < 0.015 && Math.abs(f[5]! - p[1]!) < 0.015);
  assert.equal(f[0]! + f[2]! + f[3]! + f[4]!, 0);
});

test("top-p follows Meta's rule: drop a token once the mass before it exceeds p", () => {
  const p = softmax(logits, 1); // sorted: 1 (0.32), 5 (0.29), 2 (0.26), 0, 4, 3
  const order = [1, 5, 2, 0, 4, 3];
  for (const topP of [0.1, 0.5, 0.7, 0.95]) {
    let cum = 0;
    const kept = new Set<number>();
    for (const id of order) {
      if (cum > topP) break;
      kept.add(id);
      cum += p[id]!;
    }
    const f = freq(new Sampler({ temperature: 1, topP, seed: 11 }), 6000, logits.length);
    for (let i = 0; i < logits.length; i++) {
      if (kept.has(i)) assert.ok(f[i]! > 0, `topP ${topP}: token ${i} should be possible`);
      else assert.equal(f[i], 0, `topP ${topP}: token ${i} should be cut`);
    }
  }
});

test('min-p drops tokens below min-p × p(best)', () => {
  const p = softmax(logits, 1);
  const pmax = Math.max(...p);
  const f = freq(new Sampler({ temperature: 1, topP: 1, minP: 0.5, seed: 2 }), 5000, logits.length);
  for (let i = 0; i < p.length; i++) assert.equal(f[i]! > 0, p[i]! >= 0.5 * pmax, `token ${i}`);
});

test('penalties change the argmax as defined', () => {
  // token 1 (3.0) seen twice: frequency 0.2·2 + presence 0.1 → 2.5; 5 (2.9) now wins
  const s = new Sampler({ temperature: 0, frequencyPenalty: 0.2, presencePenalty: 0.1 });
  s.observe([1, 1]);
  assert.equal(s.sample(logits), 5);
  // repetition penalty 1.2 divides positive logits of seen tokens: 3.0 → 2.5, 2.9 → 2.42; 2 (2.5) ties 1 → first wins
  const r = new Sampler({ temperature: 0, repetitionPenalty: 1.2 });
  r.observe([1, 5]);
  assert.equal(r.sample(logits), 1);
  const r2 = new Sampler({ temperature: 0, repetitionPenalty: 1.3 });
  r2.observe([1, 5]);
  assert.equal(r2.sample(logits), 2);
  // the window: penaltyLastN 1 only sees the last token
  const w = new Sampler({ temperature: 0, presencePenalty: 10, penaltyLastN: 1 });
  w.observe([1, 3]);
  assert.equal(w.sample(logits), 1);
});

test('out-of-range options are clear errors naming the option', () => {
  const bad: [Record<string, number>, RegExp][] = [
    [{ temperature: -1 }, /temperature/],
    [{ topP: 0 }, /topP/],
    [{ topP: 1.5 }, /topP/],
    [{ topK: -2 }, /topK/],
    [{ topK: 1.5 }, /topK/],
    [{ minP: 1 }, /minP/],
    [{ repetitionPenalty: 0 }, /repetitionPenalty/],
    [{ seed: -1 }, /seed/],
    [{ temperature: NaN }, /temperature/],
  ];
  for (const [o, re] of bad) {
    assert.throws(() => new Sampler(o), (e: unknown) => e instanceof Llama2Error && re.test(e.message), JSON.stringify(o));
  }
});

test('nucleusBound and kthSmallest agree with sorting, ties in probability included', () => {
  const rand = ((s: number) => () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296))(7);
  for (let trial = 0; trial < 200; trial++) {
    const V = 1 + Math.floor(rand() * 3000);
    // probabilities from a few distinct levels so that ties are common
    const raw = Array.from({ length: V }, () => (trial % 2 ? Math.floor(rand() * 5) + 1 : rand() ** 8));
    const sum = raw.reduce((a, b) => a + b, 0);
    const p = new Float32Array(raw.map((x) => x / sum));
    const bits = new Uint32Array(p.buffer);
    const scale = 2 ** Math.max(1, Math.ceil(Math.log2(V)));
    const keyOf = (i: number) => (0x3f800000 - bits[i]!) * scale + i;
    const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => p[b]! - p[a]! || a - b);
    order.forEach((id, r) => { if (r > 0) assert.ok(keyOf(order[r - 1]!) < keyOf(id), 'keys ascend in sampling order'); });
    const topP = [0.05, 0.5, 0.9, 0.999][trial % 4]!;
    let keep = V, cum = 0;
    for (let i = 0; i < V; i++) { if (cum > topP) { keep = i; break; } cum += p[order[i]!]!; }
    const keys = Float64Array.from({ length: V }, (_, i) => keyOf(i));
    const probs = Float64Array.from(p);
    const bound = nucleusBound(keys, probs, V, topP);
    const kept = order.filter((id) => keyOf(id) < bound).length;
    // the running sum may round differently at the boundary: allow the neighbouring count only there
    if (kept !== keep) {
      const edge = order.slice(0, Math.max(kept, keep)).reduce((a, id) => a + p[id]!, 0) - p[order[Math.max(kept, keep) - 1]!]!;
      assert.ok(Math.abs(kept - keep) === 1 && Math.abs(edge - topP) < 1e-6, `trial ${trial}: kept ${kept}, Meta's rule keeps ${keep}`);
    }
    const k = 1 + Math.floor(rand() * V);
    assert.equal(kthSmallest(Float64Array.from({ length: V }, (_, i) => keyOf(i)), V, k), keyOf(order[k - 1]!));
  }
});

test("the native backend's sampleDraw picks what the TypeScript sampler picks, at each ISA", { skip: !nativeBackend?.sampleDraw }, () => {
  const nb = nativeBackend!;
  const isa = nb.isa();
  const rng = new Rng(123);
  // logits on a grid of quarters: exact ties (broken by id) and probabilities that no boundary
  // of top-k / top-p / min-p sits within float rounding of, so both must agree exactly
  // top-p cuts where the sorted cumulative probability reaches topP; a row whose cumulative sum
  // passes within 1e-4 of topP at a token edge is decided by float rounding (the float32 sums of
  // thousands of terms differ from float64 by ~1e-6), so such rows are drawn again
  const nearCut = (w: Float32Array, temperature: number, topP: number): boolean => {
    const e = Array.from(w, (x) => Math.exp(x / temperature)).sort((a, b) => b - a);
    const z = e.reduce((a, b) => a + b, 0);
    let cum = 0;
    return e.some((x) => Math.abs((cum += x / z) - topP) < 1e-4);
  };
  const cases = Array.from({ length: 150 }, (_, c) => {
    const opts = {
      temperature: [0.6, 1, 1.7][c % 3]!, topK: [0, 0, 3, 40][c % 4]!, topP: [0.9, 1, 0.5, 0.95, 1][c % 5]!,
      minP: [0, 0, 0.05][c % 3]!, seed: c,
    };
    for (;;) {
      const V = 2 + Math.floor(rng.next() * (c % 3 === 0 ? 4000 : 60));
      const spread = [1, 4, 16][c % 3]!;
      const w = Float32Array.from({ length: V }, () => Math.round(rng.next() * spread * 4) / 4);
      if (opts.topP === 1 || !nearCut(w, opts.temperature, opts.topP)) return { w, opts };
    }
  });
  try {
    for (const level of nb.supportedIsas()) {
      nb.setIsa(level);
      let differ = 0;
      for (const { w, opts } of cases) {
        const js = new Sampler(opts), native = new Sampler(opts, nb.sampleDraw!.bind(nb));
        for (let d = 0; d < 5; d++) if (js.sample(w) !== native.sample(w)) differ++;
      }
      assert.equal(differ, 0, `${level}: ${differ} of ${cases.length * 5} draws differ`);
    }
  } finally {
    nb.setIsa(isa);
  }
  // the row handed to the sampler is never modified, and the accelerator overwrites only its copy
  const w = Float32Array.from([0.5, 2, -1, 2, 1]);
  const before = w.slice();
  new Sampler({ temperature: 0.8, topP: 0.9, seed: 1 }, nb.sampleDraw!.bind(nb)).sample(w);
  assert.deepEqual(w, before);
});
