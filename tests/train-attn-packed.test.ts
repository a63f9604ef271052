/**
 * Conformance of the packed (block-diagonal causal) training attention — Backend.attentionTrain /
 * attentionTrainBackward with AttnShape.starts — on every backend: the reference (the spec) and
 * the native addon at every ISA level this CPU supports with 1, 2 and 3 threads. Native results
 * are compared with the reference (out, lse, dq, dk, dv) on rows with odd segment lengths,
 * segments of length 1, segments that cross the native kernel's 64-row query blocks or begin on
 * one, GQA, T not a multiple of 64, and padding. Every backend must also satisfy what defines
 * packing: each segment's outputs equal the inference attention of that segment alone, and an
 * all-zero starts array is the plain causal path bit for bit. Invalid starts are a Llama2Error
 * naming the position, and the native addon's own check catches them when called directly.
 * (Finite differences of the reference are in train-ops.test.ts; model-level packing in
 * train-packing.test.ts.)
 *
 * Legend: B = rows, T = positions, NH/NKV = heads, HS = head size.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AttnShape, Backend } from '../src/backend/types.js';
import { refBackend } from '../src/backend/ref.js';
import { nativeBackend } from '../src/backend/native.js';
import { packedLayout } from '../src/train/model.js';
import { Llama2Error } from '../src/util/errors.js';
import { randn } from './helpers/random.js';
import { expectClose, maxAbs } from './helpers/compare.js';
import { kernelTargets } from './helpers/targets.js';

/** attention output vs float64, relative to max |v|; lse absolute + relative. */
const ATTN_OUT_TOL = 1e-5;
const LSE_TOL = 1e-6;
/** attention gradients (f32 products over T·HS terms) vs float64, relative to the largest gradient. */
const ATTN_GRAD_TOL = 1e-4;

/** Packed cases: a shape and each row's segment lengths (the rest of a row is one padding segment). */
const CASES: Array<{ name: string; s: AttnShape; lengths: number[][] }> = [
  { name: 'lengths 1, 1, 3 + padding 2, GQA 2/1', s: { B: 1, T: 7, NH: 2, NKV: 1, HS: 4 }, lengths: [[1, 1, 3]] },
  { name: 'T=70: a full row of odd segments; a segment ending at 64', s: { B: 2, T: 70, NH: 4, NKV: 2, HS: 8 }, lengths: [[5, 1, 33, 31], [64, 3]] },
  {
    name: 'T=150: length-1 segments, one beginning at 64, one across a block boundary, GQA 3/1',
    s: { B: 2, T: 150, NH: 3, NKV: 1, HS: 10 }, lengths: [[1, 1, 1, 61, 1, 17, 40], [13, 97, 29]],
  },
  { name: 'T=130: every segment of length 1', s: { B: 1, T: 130, NH: 2, NKV: 2, HS: 16 }, lengths: [new Array<number>(130).fill(1)] },
  { name: 'T=200: no segments (all padding = one plain row) and a plain second row', s: { B: 2, T: 200, NH: 2, NKV: 1, HS: 6 }, lengths: [[], [200]] },
];

interface Inputs { s: AttnShape; q: Float32Array; k: Float32Array; v: Float32Array; dout: Float32Array }

function inputs(c: (typeof CASES)[number], seed: number): Inputs {
  const { B, T, NH, NKV, HS } = c.s;
  const s = { ...c.s, starts: packedLayout(c.lengths, T).starts };
  return {
    s, q: randn(B * T * NH * HS, seed, 2), k: randn(B * T * NKV * HS, seed + 1), v: randn(B * T * NKV * HS, seed + 2),
    dout: randn(B * T * NH * HS, seed + 3),
  };
}

function forward(be: Backend, x: Inputs, s: AttnShape = x.s): { out: Float32Array; lse: Float32Array } {
  const out = new Float32Array(x.q.length);
  const lse = new Float32Array(s.B * s.NH * s.T);
  be.attentionTrain(out, lse, x.q, x.k, x.v, s);
  return { out, lse };
}

/** dq, dk, dv (null where mask says not wanted) accumulated onto seeded random values */
function backward(be: Backend, x: Inputs, f: { out: Float32Array; lse: Float32Array }, mask: number[], s: AttnShape = x.s): (Float32Array | null)[] {
  const g = [randn(x.q.length, 21), randn(x.k.length, 22), randn(x.v.length, 23)].map((a, i) => (mask[i] ? a : null));
  be.attentionTrainBackward(g[0]!, g[1]!, g[2]!, x.dout, x.q, x.k, x.v, f.out, f.lse, s);
  return g;
}

/** each segment of each row: [first global row index (b·T + t0), length] */
function segments(s: AttnShape): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const st = s.starts!;
  for (let n = 0; n < s.B * s.T; n++) {
    if (n % s.T === st[n]) out.push([n, 1]);
    else out[out.length - 1]![1]++;
  }
  return out;
}

const memo = new Map<string, unknown>();
function onRef<V>(key: string, fn: () => V): V {
  if (!memo.has(key)) memo.set(key, fn());
  return memo.get(key) as V;
}

for (const tg of kernelTargets('packed attention', () => [1, 2, 3])) {
  describe(`packed training attention on ${tg.name}`, () => {
    const be = tg.be;
    before(tg.setup);

    test('forward: vs ref (out, lse); each segment = the inference attention of it alone; zero starts = plain, bit for bit', () => {
      for (const [ci, c] of CASES.entries()) {
        const x = inputs(c, 100 * ci);
        const { NH, NKV, HS } = x.s;
        const got = forward(be, x);
        const want = onRef(`fwd ${ci}`, () => forward(refBackend, x));
        const tol = ATTN_OUT_TOL * maxAbs(x.v);
        expectClose(`${c.name}: out`, got.out, want.out, () => tol);
        expectClose(`${c.name}: lse`, got.lse, want.lse, (i) => LSE_TOL * (1 + Math.abs(want.lse[i]!)));
        for (const [n0, len] of segments(x.s)) {
          const alone = new Float32Array(len * NH * HS);
          const kv = (a: Float32Array) => a.subarray(n0 * NKV * HS, (n0 + len) * NKV * HS);
          be.attention(alone, x.q.subarray(n0 * NH * HS, (n0 + len) * NH * HS), kv(x.k), kv(x.v), len, 0, NH, NKV, HS);
          expectClose(`${c.name}: segment at ${n0} (${len}) = attention of it alone`, got.out.subarray(n0 * NH * HS, (n0 + len) * NH * HS), alone, () => tol);
        }
        const plain = { ...x.s, starts: undefined };
        const zeros = { ...x.s, starts: new Int32Array(x.s.B * x.s.T) };
        assert.deepEqual(forward(be, x, zeros), forward(be, x, plain), `${c.name}: zero starts differ from plain causal`);
      }
    });

    test('backward: vs ref for every null pattern of dq / dk / dv; zero starts = plain, bit for bit', () => {
      for (const [ci, c] of CASES.entries()) {
        const x = inputs(c, 100 * ci + 50);
        const f = onRef(`bwd input ${ci}`, () => forward(refBackend, x));
        for (const mask of [[1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]) {
          const got = backward(be, x, f, mask);
          const want = onRef(`bwd ${ci} ${mask}`, () => backward(refBackend, x, f, mask));
          want.forEach((w, i) => {
            if (!w) return assert.equal(got[i], null);
            const tol = ATTN_GRAD_TOL * maxAbs(w);
            expectClose(`${c.name}: ${['dq', 'dk', 'dv'][i]}`, got[i]!, w, () => tol);
          });
        }
        const zeros = { ...x.s, starts: new Int32Array(x.s.B * x.s.T) };
        const fz = forward(be, x, zeros);
        assert.deepEqual(backward(be, x, fz, [1, 1, 1], zeros), backward(be, x, fz, [1, 1, 1], { ...x.s, starts: undefined }),
          `${c.name}: backward with zero starts differs from plain causal`);
      }
    });

    test('invalid starts: a Llama2Error naming the position, forward and backward', () => {
      const s = { B: 2, T: 4, NH: 1, NKV: 1, HS: 2 };
      const bad: Array<[number[], RegExp]> = [
        [[1, 1, 2, 3, 0, 0, 0, 0], /starts\[0\] \(row 0, position 0\) is 1, expected 0/],
        [[0, 0, 2, 1, 0, 0, 0, 0], /starts\[3\] \(row 0, position 3\) is 1, expected 2 .* or 3/], // decreasing
        [[0, 0, 0, 0, 0, 0, 7, 7], /starts\[6\] \(row 1, position 2\) is 7, expected 0 .* or 2/], // beyond t
        [[0, 0, 0, 0, 0, 0, 1, 1], /starts\[6\] \(row 1, position 2\) is 1/], // a segment not beginning at its start
        [[0, 1, 2, 3, 0, 1, 2, -1], /starts\[7\] \(row 1, position 3\) is -1/],
        [[0, 0, 0, 0, 0, 0, 0], /starts has 7 entries, expected B·T = 2·4 = 8/],
      ];
      const q = new Float32Array(16);
      const isErr = (re: RegExp) => (e: unknown) => e instanceof Llama2Error && re.test(e.message);
      for (const [starts, re] of bad) {
        const sh = { ...s, starts: Int32Array.from(starts) };
        assert.throws(() => be.attentionTrain(q.slice(), new Float32Array(8), q, q, q, sh), isErr(re), `forward, starts ${starts}`);
        assert.throws(() => be.attentionTrainBackward(q.slice(), null, null, q, q, q, q, q, new Float32Array(8), sh), isErr(re), `backward, starts ${starts}`);
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// native only: thread-count independence and the addon's own argument checks

const nb = nativeBackend;
describe('native packed attention: threads and the addon\'s checks', { skip: nb ? false : 'native addon not loaded' }, () => {
  test('bit-identical results with 1, 2 and 3 threads at every ISA', () => {
    const x = inputs(CASES[2]!, 7);
    for (const isa of nb!.supportedIsas()) {
      nb!.setIsa(isa);
      const runs = [1, 2, 3].map((th) => {
        nb!.setThreads(th);
        const f = forward(nb!, x);
        return { ...f, grads: backward(nb!, x, f, [1, 1, 1]) };
      });
      assert.deepEqual(runs[1], runs[0], `${isa}: 2 threads differ from 1`);
      assert.deepEqual(runs[2], runs[0], `${isa}: 3 threads differ from 1`);
    }
  });

  test('the addon itself rejects bad starts (type, length, values) before touching memory', (t) => {
    const path = process.env['LLAMA2_NATIVE_PATH'] ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'build', 'Release', 'llama2_native.node');
    if (!existsSync(path)) return t.skip(`no addon at ${path}`);
    const addon = createRequire(import.meta.url)(path) as {
      ATTN_STARTS?: boolean;
      attentionTrain(out: Float32Array, lse: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array,
        B: number, T: number, NH: number, NKV: number, HS: number, starts?: unknown): void;
      attentionTrainBackward(dq: null, dk: null, dv: Float32Array, dout: Float32Array, q: Float32Array, k: Float32Array,
        v: Float32Array, out: Float32Array, lse: Float32Array, B: number, T: number, NH: number, NKV: number, HS: number, starts?: unknown): void;
    };
    assert.equal(addon.ATTN_STARTS, true);
    const a = new Float32Array(16);
    const fwd = (starts: unknown) => addon.attentionTrain(a.slice(), new Float32Array(8), a, a, a, 2, 4, 1, 1, 2, starts);
    const bwd = (starts: unknown) => addon.attentionTrainBackward(null, null, a.slice(), a, a, a, a, a, new Float32Array(8), 2, 4, 1, 1, 2, starts);
    for (const call of [fwd, bwd]) {
      assert.throws(() => call(Float32Array.from([0, 0, 0, 0, 0, 0, 0, 0])), /starts must be a Int32Array or null/);
      assert.throws(() => call(new Int32Array(7)), /starts has 7 elements, needs B\*T = 8/);
      assert.throws(() => call(Int32Array.from([0, 0, 2, 1, 0, 0, 0, 0])), /starts\[3\] \(row 0, position 3\) is 1, expected 2 or 3/);
      assert.throws(() => call(Int32Array.from([0, 0, 0, 0, 0, 9, 9, 9])), /starts\[5\] \(row 1, position 1\) is 9, expected 0 or 1/);
      call(Int32Array.from([0, 1, 1, 3, 0, 0, 0, 0])); // valid
      call(null);
    }
  });
});
