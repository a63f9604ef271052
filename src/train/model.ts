/**
 * The Llama-2 forward pass for training, built from the fused ops of ops.ts on a Tape, over a
 * batch of B rows of T tokens. It computes what model/forward.ts computes, but keeps what the
 * backward needs; it has no KV cache and no decoding (that is the inference engine's job).
 * A row is one sequence at positions 0..T-1, or, with a RowLayout (packedLayout), several packed
 * samples that each restart at position 0 and attend only to themselves, so packing changes no
 * sample's loss or gradients (what SFT with `--packing block` needs).
 *
 *   x = tok_embeddings[tokens]
 *   per layer: h = x + wo·attn(rope(wq·norm(x)), rope(wk·norm(x)), wv·norm(x))
 *              x = h + w2·(silu(w1·norm(h)) ⊙ w3·norm(h))
 *   hidden = norm(x)            (what the LM head, the reward head and a value head read)
 *   logits = output · hidden
 *
 * Legend: B = rows, T = positions, N = B*T, C = dim, V = vocab, NH / NKV = heads, HS = head size.
 */
import type { LlamaConfig } from '../model/config.js';
import { headDim } from '../model/config.js';
import { LAYER_KEYS, metaKey, type LayerKey, type ModelWeights } from '../model/weights.js';
import type { AttnShape } from '../backend/types.js';
import { checkAttnStarts } from '../backend/attn-starts.js';
import { Llama2Error } from '../util/errors.js';
import { paramFromTensor, type Param } from './params.js';
import type { Tape, Var } from './tape.js';
import { add, attention, embedding, linear, rmsnorm, rope, swiglu } from './ops.js';
import { crossEntropy, tokenLogprobs, type CrossEntropyResult } from './loss.js';

export interface TrainModel {
  readonly config: LlamaConfig;
  readonly weights: ModelWeights;
  /** every parameter once (a tied output head is the embedding's Param), Meta names */
  readonly params: Param[];
  readonly tok: Param;
  readonly layers: Record<LayerKey, Param>[];
  readonly norm: Param;
  readonly output: Param;
}

/**
 * Wraps F32 weights as a trainable model (no copy; see params.ts). frozen: no gradients (a
 * reference policy that is only run forward).
 */
export function trainModel(config: LlamaConfig, weights: ModelWeights, opts: { frozen?: boolean } = {}): TrainModel {
  if (weights.layers.length !== config.n_layers) {
    throw new Llama2Error(`training: weights have ${weights.layers.length} layers but the config says n_layers ${config.n_layers}`);
  }
  const P = (name: string, t: Parameters<typeof paramFromTensor>[1]) => paramFromTensor(name, t, opts);
  const tok = P('tok_embeddings.weight', weights.tok_embeddings);
  const layers = weights.layers.map((lw, l) => {
    const r = {} as Record<LayerKey, Param>;
    for (const k of LAYER_KEYS) r[k] = P(metaKey(l, k), lw[k]);
    return r;
  });
  const norm = P('norm.weight', weights.norm);
  const tied = weights.output === weights.tok_embeddings;
  const output = tied ? tok : P('output.weight', weights.output);
  const params = [tok, ...layers.flatMap((r) => LAYER_KEYS.map((k) => r[k])), norm, ...(tied ? [] : [output])];
  return { config, weights, params, tok, layers, norm, output };
}

/** Positions 0..T-1 for each of B rows (N). */
export function rowPositions(B: number, T: number): Int32Array {
  const pos = new Int32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) pos[b * T + t] = t;
  return pos;
}

/**
 * Where each token of a batch sits, both (N): positions[n] is its RoPE position, starts[n] the
 * index within its row of the first token of its segment (what attention may see; see
 * AttnShape.starts). Without one: positions 0..T-1 and one segment per row.
 */
export interface RowLayout {
  positions: Int32Array;
  starts: Int32Array;
}

/**
 * The layout of B = segmentLengths.length rows of T tokens, each row packing segments of the
 * given lengths in order, every one at positions 0..len-1; the rest of a row (padding) forms one
 * more segment. Example: packedLayout([[2, 3]], 6) → positions [0, 1, 0, 1, 2, 0],
 * starts [0, 0, 2, 2, 2, 5].
 */
export function packedLayout(segmentLengths: number[][], T: number): RowLayout {
  if (!(Number.isInteger(T) && T > 0)) throw new Llama2Error(`packedLayout: T must be a positive integer, found ${T}`);
  const B = segmentLengths.length;
  const positions = new Int32Array(B * T); // (N)
  const starts = new Int32Array(B * T); // (N)
  segmentLengths.forEach((lengths, b) => {
    let t0 = 0; // first position of the next segment
    const segment = (len: number) => {
      for (let t = t0; t < t0 + len; t++) {
        positions[b * T + t] = t - t0;
        starts[b * T + t] = t0;
      }
      t0 += len;
    };
    lengths.forEach((len, i) => {
      if (!(Number.isInteger(len) && len > 0)) {
        throw new Llama2Error(`packedLayout: row ${b}, segment ${i} has length ${len}, expected a positive integer`);
      }
      if (t0 + len > T) {
        throw new Llama2Error(`packedLayout: row ${b} holds ${t0 + len} tokens in its first ${i + 1} segments (${lengths.slice(0, i + 1).join(' + ')}), more than T = ${T}`);
      }
      segment(len);
    });
    segment(T - t0); // padding
  });
  return { positions, starts };
}

/** Checks a RowLayout for B rows of T tokens (a Llama2Error naming the entry). */
function checkLayout(layout: RowLayout, B: number, T: number): void {
  const { positions, starts } = layout;
  if (positions.length !== B * T) {
    throw new Llama2Error(`training forward: layout.positions has ${positions.length} entries, expected B·T = ${B}·${T} = ${B * T}`);
  }
  for (let n = 0; n < positions.length; n++) {
    const p = positions[n]!;
    if (p < 0) throw new Llama2Error(`training forward: layout.positions[${n}] (row ${Math.floor(n / T)}, position ${n % T}) is ${p}, expected ≥ 0`);
  }
  checkAttnStarts(starts, B, T, 'training forward: layout');
}

/** One transformer block: x (N, C) → (N, C); positions (N) for RoPE, the attention's shape and segments. */
function block(tape: Tape, m: TrainModel, l: number, x: Var, pos: Int32Array, shape: AttnShape): Var {
  const c = m.config;
  const w = m.layers[l]!;
  const HS = shape.HS;
  const xn = rmsnorm(tape, x, w.attention_norm, c.norm_eps); // (N, C)
  const q = rope(tape, linear(tape, xn, w.wq), c.n_heads, HS, pos, c.rope_theta); // (N, NH*HS)
  const k = rope(tape, linear(tape, xn, w.wk), c.n_kv_heads, HS, pos, c.rope_theta); // (N, NKV*HS)
  const v = linear(tape, xn, w.wv); // (N, NKV*HS)
  const att = attention(tape, q, k, v, shape); // (N, NH*HS)
  const h = add(tape, x, linear(tape, att, w.wo)); // (N, C)
  const hn = rmsnorm(tape, h, w.ffn_norm, c.norm_eps); // (N, C)
  const g = swiglu(tape, linear(tape, hn, w.w1), linear(tape, hn, w.w3)); // (N, H)
  return add(tape, h, linear(tape, g, w.w2)); // (N, C)
}

/**
 * Final-RMSNorm'ed hidden states (B*T, C) of tokens (B*T, row-major); layout: packed rows
 * (positions and segments, see RowLayout), default one sequence per row.
 */
export function forwardHidden(tape: Tape, m: TrainModel, tokens: Int32Array, B: number, T: number, layout?: RowLayout): Var {
  if (tokens.length !== B * T) throw new Llama2Error(`training forward: ${tokens.length} tokens is not B×T = ${B}×${T}`);
  if (layout) checkLayout(layout, B, T);
  const c = m.config;
  const pos = layout ? layout.positions : rowPositions(B, T); // (N)
  const shape: AttnShape = { B, T, NH: c.n_heads, NKV: c.n_kv_heads, HS: headDim(c), ...(layout ? { starts: layout.starts } : {}) };
  let x = embedding(tape, m.tok, tokens); // (N, C)
  for (let l = 0; l < c.n_layers; l++) x = block(tape, m, l, x, pos, shape);
  return rmsnorm(tape, x, m.norm, c.norm_eps); // (N, C)
}

/** Hidden states and logits (B*T, V). */
export function forwardLogits(
  tape: Tape, m: TrainModel, tokens: Int32Array, B: number, T: number, layout?: RowLayout,
): { hidden: Var; logits: Var } {
  const hidden = forwardHidden(tape, m, tokens, B, T, layout);
  return { hidden, logits: linear(tape, hidden, m.output) };
}

/**
 * Language-model loss of one batch: inputs and targets (B*T) with targets[n] the token after
 * inputs[n]; optional SFT mask (B*T) on target positions; optional layout of packed rows.
 * Call tape.backward(result.loss, scale) to accumulate gradients into the params (scale =
 * 1/micro-batches for gradient accumulation).
 */
export function lmLoss(
  tape: Tape, m: TrainModel, inputs: Int32Array, targets: Int32Array, B: number, T: number, mask?: ArrayLike<number>,
  layout?: RowLayout,
): CrossEntropyResult {
  const { logits } = forwardLogits(tape, m, inputs, B, T, layout);
  return crossEntropy(tape, logits, targets, mask, { consumeLogits: true }); // no one else sees these logits
}

/**
 * Per-token log-probs of `targets` under the model (B*T): logp[n] = log p(targets[n] | inputs[..n])
 * (with a layout, the inputs of n's own segment only). A Var, so a PPO objective can
 * back-propagate through it; on a non-recording tape it is a plain evaluation (the frozen
 * reference policy).
 */
export function sequenceLogprobs(
  tape: Tape, m: TrainModel, inputs: Int32Array, targets: Int32Array, B: number, T: number, layout?: RowLayout,
): Var {
  const { logits } = forwardLogits(tape, m, inputs, B, T, layout);
  return tokenLogprobs(tape, logits, targets);
}
