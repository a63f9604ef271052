/**
 * Packed rows in the training model (src/train/model.ts: RowLayout, packedLayout): packing several
 * samples into one row with block-diagonal attention and restarted positions changes nothing about
 * any sample. For a tiny random model, three samples packed into one row give the same per-token
 * NLLs, log-probs and parameter gradients as each sample alone in its own padded row (the loss
 * masked to the samples' tokens), on the reference backend and the native one at every ISA; a
 * layout of all-zero starts and positions 0..T-1 is the plain path bit for bit; packedLayout's
 * values are checked by hand, and bad lengths and layouts are Llama2Errors that name the entry.
 *
 * Legend: B = rows, T = positions, N = B*T, V = vocab.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { makeConfig } from '../src/model/config.js';
import { Llama2Error } from '../src/util/errors.js';
import { Tape } from '../src/train/tape.js';
import { initModelWeights, zeroGrads } from '../src/train/params.js';
import { lmLoss, packedLayout, rowPositions, sequenceLogprobs, trainModel, type RowLayout, type TrainModel } from '../src/train/model.js';
import { rng } from './helpers/random.js';
import { expectClose, maxAbs } from './helpers/compare.js';
import { kernelTargets } from './helpers/targets.js';

/** the same float32 quantities computed over differently shaped batches: per-token NLL (absolute) */
const NLL_TOL = 2e-5;
/** parameter gradients, relative to each parameter's largest gradient */
const GRAD_REL_TOL = 1e-4;

const cfg = makeConfig({ dim: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, vocab_size: 61, multiple_of: 16, max_seq_len: 64 });
const T = 24;
const LENGTHS = [7, 11, 5]; // three samples (inputs); 1 padding token in the packed row

/** A tiny model with weights 8× the init's, so attention is peaked and every token matters. */
function model(): TrainModel {
  const m = trainModel(cfg, initModelWeights(cfg, 3));
  for (const p of m.params) if (p.decay) for (let i = 0; i < p.f32.length; i++) p.f32[i] = p.f32[i]! * 8;
  return m;
}

/** each sample: L + 1 random tokens (inputs are the first L, targets the last L) */
const r = rng(17);
const samples = LENGTHS.map((L) => Int32Array.from({ length: L + 1 }, () => Math.floor(r() * cfg.vocab_size)));
const junk = () => Math.floor(r() * cfg.vocab_size); // padding tokens (masked out, never seen by a sample)

/** B rows of T: inputs, targets and mask; place(b, t0, sample) puts a sample into row b at t0 */
function batch(B: number, place: (put: (b: number, t0: number, s: Int32Array) => void) => void) {
  const x = Int32Array.from({ length: B * T }, junk);
  const y = Int32Array.from({ length: B * T }, junk);
  const mask = new Float64Array(B * T);
  place((b, t0, s) => {
    for (let t = 0; t < s.length - 1; t++) {
      x[b * T + t0 + t] = s[t]!;
      y[b * T + t0 + t] = s[t + 1]!;
      mask[b * T + t0 + t] = 1;
    }
  });
  return { x, y, mask };
}

/** per-token NLL (N), log-probs (N) and a copy of every parameter gradient */
function run(tape: Tape, m: TrainModel, B: number, bt: ReturnType<typeof batch>, layout?: RowLayout) {
  tape.reset();
  zeroGrads(m.params);
  const res = lmLoss(tape, m, bt.x, bt.y, B, T, bt.mask, layout);
  const nll = Float32Array.from(res.nll);
  tape.backward(res.loss);
  const grads = m.params.map((p) => Float32Array.from(p.grad));
  tape.reset();
  const logp = Float32Array.from(sequenceLogprobs(new Tape(tape.backend, false), m, bt.x, bt.y, B, T, layout).data);
  return { loss: res.value, nll, logp, grads };
}

for (const tg of kernelTargets('packed training model', (_isa) => [2])) {
  describe(`packed rows in the training model on ${tg.name}`, () => {
    before(tg.setup);

    test('three samples packed in one row = each alone in its own padded row (NLLs, log-probs, gradients)', () => {
      const m = model();
      const tape = new Tape(tg.be);
      const starts = [0, LENGTHS[0]!, LENGTHS[0]! + LENGTHS[1]!];
      const packed = run(tape, m, 1, batch(1, (put) => samples.forEach((s, i) => put(0, starts[i]!, s))), packedLayout([LENGTHS], T));
      const alone = run(tape, m, 3, batch(3, (put) => samples.forEach((s, i) => put(i, 0, s))));
      assert.ok(Math.abs(packed.loss - alone.loss) <= NLL_TOL, `loss ${packed.loss} packed vs ${alone.loss} alone`);
      LENGTHS.forEach((L, i) => {
        const p = (a: Float32Array) => a.subarray(starts[i]!, starts[i]! + L);
        const a = (x: Float32Array) => x.subarray(i * T, i * T + L);
        expectClose(`sample ${i}: NLL packed vs alone`, p(packed.nll), a(alone.nll), () => NLL_TOL);
        expectClose(`sample ${i}: log-probs packed vs alone`, p(packed.logp), a(alone.logp), () => NLL_TOL);
        expectClose(`sample ${i}: log-prob = −NLL`, p(packed.logp), p(packed.nll).map((v) => -v), () => NLL_TOL);
      });
      packed.grads.forEach((g, i) => {
        const tol = GRAD_REL_TOL * maxAbs(alone.grads[i]!);
        assert.ok(tol > 0, `${m.params[i]!.name}: no gradient`);
        expectClose(`gradient of ${m.params[i]!.name} packed vs alone`, g, alone.grads[i]!, () => tol);
      });
      // the check can fail: without the layout, the packed row's later samples see the earlier ones
      const leaky = run(tape, m, 1, batch(1, (put) => samples.forEach((s, i) => put(0, starts[i]!, s))));
      const d = Math.max(...leaky.nll.subarray(starts[1]!, starts[1]! + LENGTHS[1]!).map((v, t) => Math.abs(v - alone.nll[T + t]!)));
      assert.ok(d > 100 * NLL_TOL, `unpacked causal attention over the row should change sample 1's NLLs (max change ${d})`);
    });

    test('a layout of zero starts and positions 0..T-1 = no layout, bit for bit', () => {
      const m = model();
      const tape = new Tape(tg.be);
      const bt = batch(2, (put) => { put(0, 0, samples[1]!); put(1, 3, samples[0]!); });
      const layout = { positions: rowPositions(2, T), starts: new Int32Array(2 * T) };
      assert.deepEqual(run(tape, m, 2, bt, layout), run(tape, m, 2, bt));
      // positions do feed RoPE: stretching them changes the loss
      const stretched = run(tape, m, 2, bt, { positions: rowPositions(2, T).map((p) => 3 * p), starts: layout.starts });
      assert.ok(Math.abs(stretched.loss - run(tape, m, 2, bt).loss) > 1e-4, 'stretched positions left the loss unchanged');
    });
  });
}

test('packedLayout: positions restart per segment, padding is one more segment (hand-written values)', () => {
  const { positions, starts } = packedLayout([[2, 3], [], [4], [1, 1]], 6);
  assert.deepEqual([...positions], [0, 1, 0, 1, 2, 0, /**/ 0, 1, 2, 3, 4, 5, /**/ 0, 1, 2, 3, 0, 1, /**/ 0, 0, 0, 1, 2, 3]);
  assert.deepEqual([...starts], [0, 0, 2, 2, 2, 5, /**/ 0, 0, 0, 0, 0, 0, /**/ 0, 0, 0, 0, 4, 4, /**/ 0, 1, 2, 2, 2, 2]);
  const full = packedLayout([[3, 3]], 6); // no padding
  assert.deepEqual([...full.starts], [0, 0, 0, 3, 3, 3]);
});

test('packedLayout and the layout argument: Llama2Errors that name the row, segment or entry', () => {
  const isErr = (re: RegExp) => (e: unknown) => e instanceof Llama2Error && re.test(e.message);
  assert.throws(() => packedLayout([[2], [3, 4]], 6), isErr(/row 1 holds 7 tokens in its first 2 segments \(3 \+ 4\), more than T = 6/));
  assert.throws(() => packedLayout([[2, 0]], 6), isErr(/row 0, segment 1 has length 0, expected a positive integer/));
  assert.throws(() => packedLayout([[1.5]], 6), isErr(/row 0, segment 0 has length 1.5/));
  assert.throws(() => packedLayout([[1]], 0), isErr(/T must be a positive integer, found 0/));
  const m = model();
  const tape = new Tape();
  const x = new Int32Array(2 * 4);
  const good = packedLayout([[2, 2], [1]], 4);
  const bad: Array<[RowLayout, RegExp]> = [
    [{ ...good, positions: new Int32Array(7) }, /layout\.positions has 7 entries, expected B·T = 2·4 = 8/],
    [{ ...good, positions: Int32Array.from([0, 1, 0, 1, 0, -2, 0, 0]) }, /layout\.positions\[5\] \(row 1, position 1\) is -2, expected ≥ 0/],
    [{ ...good, starts: Int32Array.from([0, 0, 2, 2, 0, 1, 0, 1]) }, /layout: starts\[6\] \(row 1, position 2\) is 0, expected 1 .* or 2/],
    [{ ...good, starts: new Int32Array(9) }, /layout: starts has 9 entries, expected B·T = 2·4 = 8/],
  ];
  for (const [layout, re] of bad) assert.throws(() => lmLoss(tape, m, x, x, 2, 4, undefined, layout), isErr(re));
  lmLoss(tape, m, x, x, 2, 4, undefined, good); // the valid one runs
});
