/**
 * The inference engine: Llama-2 forward over token ids with a KV cache, exactly as Meta's
 * llama/model.py computes it (pre-norm RMSNorm, RoPE on interleaved pairs, grouped-query
 * attention, SwiGLU FFN, untied or tied output head).
 *
 * One call runs any number of *segments*: each is a run of new tokens for one sequence and its
 * own KV cache. All segments' tokens go through the weight matmuls together (so a batch of K
 * sequences decoding one token each costs one pass over the weights); attention runs per segment.
 * That is the batched decoding that rejection sampling and PPO need, and plain prefill/decode is
 * the one-segment case.
 *
 * With a backend that offers a whole-forward engine (Backend.prepareModel: the native addon) the
 * same computation runs in one native call per forward (forwardEngine); the kernel-by-kernel code
 * below stays the spec that tests compare the engine with (ModelOptions.fused = false runs it).
 *
 * The engine sees token ids only: no tokenizer, no sampling, no chat format.
 *
 * Legend: T = tokens of all segments together, C = dim, H = FFN hidden, V = vocab,
 * NH / NKV = query / kv heads, HS = head size, S = cache capacity.
 */
import type { Backend, PreparedModel } from '../backend/types.js';
import { totalmem } from 'node:os';
import { ffnHiddenDim, headDim, kvCacheBytes, type LlamaConfig } from './config.js';
import type { ModelWeights } from './weights.js';
import { toFloat32 } from '../tensor.js';
import { Llama2Error, formatBytes } from '../util/errors.js';

export interface KVCache {
  /** positions the cache can hold */
  readonly capacity: number;
  /** per layer (S, NKV*HS) */
  readonly k: Float32Array[];
  readonly v: Float32Array[];
  /** positions filled so far (the next token's position) */
  length: number;
}

/**
 * A cache for `capacity` positions (size it for the prompt plus the tokens to generate, not the
 * whole context). A cache larger than the machine's memory is a Llama2Error giving its size.
 */
export function createKVCache(c: LlamaConfig, capacity: number): KVCache {
  if (!Number.isSafeInteger(capacity) || capacity < 1) throw new Llama2Error(`KV cache: expected at least 1 position, found ${capacity}`);
  const w = c.n_kv_heads * headDim(c);
  const bytes = kvCacheBytes(c, capacity);
  const tooBig = () => new Llama2Error(
    `KV cache: ${capacity} positions need ${formatBytes(bytes)} (float32 K and V, ${c.n_layers} layers × ${w} values per position each) ` +
      `but this machine has ${formatBytes(totalmem())} of memory; use a smaller context (--ctx) or fewer new tokens (--max-tokens)`,
  );
  if (bytes > totalmem()) throw tooBig();
  const k: Float32Array[] = [];
  const v: Float32Array[] = [];
  try {
    for (let l = 0; l < c.n_layers; l++) {
      k.push(new Float32Array(capacity * w)); // (S, NKV*HS)
      v.push(new Float32Array(capacity * w));
    }
  } catch (e) {
    if (e instanceof RangeError) throw tooBig(); // past the largest typed array, or the allocation failed
    throw e;
  }
  return { capacity, k, v, length: 0 };
}

/** Copies the first `length` positions of `src` into `dst` (e.g. to branch K samples off one prompt). */
export function copyKVCache(src: KVCache, dst: KVCache, length = src.length): void {
  if (length > dst.capacity) throw new Llama2Error(`KV cache: cannot copy ${length} positions into a cache of ${dst.capacity}`);
  for (let l = 0; l < src.k.length; l++) {
    const n = length * (src.k[l]!.length / src.capacity);
    dst.k[l]!.set(src.k[l]!.subarray(0, n));
    dst.v[l]!.set(src.v[l]!.subarray(0, n));
  }
  dst.length = length;
}

export interface Segment {
  tokens: ArrayLike<number>;
  cache: KVCache;
}

/**
 * Which positions get logits: every token, each segment's last token, none, or per segment the
 * number of its last tokens that do (e.g. [1, 0, 5]: the last token of segment 0, none of segment
 * 1, the last five of segment 2; 'last' is all ones).
 */
export type LogitsMode = 'all' | 'last' | 'none' | readonly number[];

export interface ForwardOptions {
  /** which positions get logits (see LogitsMode). Default 'all'. */
  logits?: LogitsMode;
  /** also return the final-RMSNorm'ed hidden state of every token (what feeds the LM head) */
  hidden?: boolean;
  /**
   * write the logits into this buffer (at least rows × V floats) instead of a new one: the
   * returned logits are then views of it, valid until the caller reuses it (a decode loop that
   * samples each row at once saves a 128 KiB allocation per token)
   */
  logitsOut?: Float32Array;
}

/** `out` when it holds n floats (its first n), else a new buffer */
function logitsBuffer(out: Float32Array | undefined, n: number): Float32Array {
  return out && out.length >= n ? out.subarray(0, n) : new Float32Array(n);
}

export interface ForwardResult {
  /** per segment: (T_s, V) for 'all', (1, V) for 'last', empty for 'none', (tail_s, V) for tails */
  logits: Float32Array[];
  /** per segment (T_s, C) when requested */
  hidden: Float32Array[];
}

/** per segment, how many of its last tokens get logits */
function logitTails(segments: readonly Segment[], mode: LogitsMode): Int32Array {
  const tails = new Int32Array(segments.length);
  if (typeof mode !== 'string' && mode.length !== segments.length) {
    throw new Llama2Error(`forward: logits lists ${mode.length} tail counts for ${segments.length} segments`);
  }
  segments.forEach((seg, i) => {
    const n = seg.tokens.length;
    const want = mode === 'all' ? n : mode === 'last' ? 1 : mode === 'none' ? 0 : mode[i]!;
    if (!Number.isInteger(want) || want < 0 || want > n) {
      throw new Llama2Error(`forward: segment ${i} has ${n} tokens, so its logits tail must be an integer in 0..${n}; found ${want}`);
    }
    tails[i] = want;
  });
  return tails;
}

/** the token indices (ascending) that get logits: the last tails[s] tokens of each segment */
function logitRows(segments: readonly Segment[], tails: Int32Array): Int32Array {
  let n = 0;
  for (const t of tails) n += t;
  const rows = new Int32Array(n);
  let t0 = 0, r = 0;
  segments.forEach((seg, i) => {
    t0 += seg.tokens.length;
    for (let t = t0 - tails[i]!; t < t0; t++) rows[r++] = t;
  });
  return rows;
}

/** per-segment views of the logits (rows, V) and copies of the hidden states (T, C) */
function splitResult(
  segments: readonly Segment[], tails: Int32Array, logits: Float32Array, hidden: Float32Array | null, c: LlamaConfig,
): ForwardResult {
  const result: ForwardResult = { logits: [], hidden: [] };
  let r = 0;
  segments.forEach((_, i) => {
    const n = tails[i]!;
    result.logits.push(logits.subarray(r * c.vocab_size, (r + n) * c.vocab_size));
    r += n;
  });
  if (hidden) {
    let t0 = 0;
    for (const seg of segments) {
      const n = seg.tokens.length;
      result.hidden.push(hidden.slice(t0 * c.dim, (t0 + n) * c.dim));
      t0 += n;
    }
  }
  return result;
}

export interface ModelOptions {
  /**
   * Use the backend's whole-forward engine (Backend.prepareModel) when it has one: one native
   * call per forward instead of one per kernel. Default true; false runs the kernel-by-kernel
   * path below, which is the engine's spec (tests compare the two).
   */
  fused?: boolean;
  /** see PreparedModelInput.repack (default 'mapped') */
  repack?: 'never' | 'mapped' | 'always';
}

/** A model ready to run: config, weights (any dtype), the backend, and reusable scratch buffers. */
export class Model {
  readonly hiddenDim: number;
  readonly headSize: number;
  private readonly attnNorm: Float32Array[];
  private readonly ffnNorm: Float32Array[];
  private readonly finalNorm: Float32Array;
  private scratchT = 0;
  private s: Record<'x' | 'xb' | 'q' | 'k' | 'v' | 'att' | 'h1' | 'h3', Float32Array> | null = null;
  private readonly fused: boolean;
  private readonly repack: ModelOptions['repack'];
  /** the backend's engine and the weight byte arrays it was built from (rebuilt if any is replaced) */
  private engine: { run: PreparedModel; data: Uint8Array[] } | null = null;

  constructor(readonly config: LlamaConfig, readonly weights: ModelWeights, readonly backend: Backend, opts: ModelOptions = {}) {
    this.hiddenDim = ffnHiddenDim(config);
    this.headSize = headDim(config);
    // norm weights are tiny: keep float32 copies (views when stored as aligned F32, so training updates show)
    this.attnNorm = weights.layers.map((l) => toFloat32(l.attention_norm));
    this.ffnNorm = weights.layers.map((l) => toFloat32(l.ffn_norm));
    this.finalNorm = toFloat32(weights.norm);
    this.fused = opts.fused ?? true;
    this.repack = opts.repack;
  }

  /**
   * Builds the backend's engine now instead of at the first forward call (the native engine may
   * copy Q4_0 matrices into its own layout: seconds for a 7B model), so that load time is not
   * counted as prompt time. Does nothing on a backend without an engine.
   */
  prepare(): void {
    this.prepared();
  }

  /** The backend's engine for these weights, or null when the backend has none (or fused is off). */
  private prepared(): PreparedModel | null {
    if (!this.fused || !this.backend.prepareModel) return null;
    const w = this.weights;
    const data = [w.tok_embeddings.data, w.output.data];
    for (const l of w.layers) data.push(l.wq.data, l.wk.data, l.wv.data, l.wo.data, l.w1.data, l.w2.data, l.w3.data);
    const e = this.engine;
    if (!e || e.data.length !== data.length || e.data.some((d, i) => d !== data[i])) {
      const run = this.backend.prepareModel({
        config: this.config, weights: w, attnNorm: this.attnNorm, ffnNorm: this.ffnNorm, finalNorm: this.finalNorm,
        repack: this.repack,
      });
      this.engine = { run, data };
    }
    return this.engine!.run;
  }

  newCache(capacity = this.config.max_seq_len): KVCache {
    return createKVCache(this.config, capacity);
  }

  private scratch(T: number) {
    if (!this.s || this.scratchT < T) {
      const c = this.config;
      const kvW = c.n_kv_heads * this.headSize;
      const n = Math.max(T, 1);
      this.s = {
        x: new Float32Array(n * c.dim), // (T, C) residual stream
        xb: new Float32Array(n * c.dim), // (T, C) normed input / projections back
        q: new Float32Array(n * c.dim), // (T, NH*HS)
        k: new Float32Array(n * kvW), // (T, NKV*HS)
        v: new Float32Array(n * kvW), // (T, NKV*HS)
        att: new Float32Array(n * c.dim), // (T, NH*HS)
        h1: new Float32Array(n * this.hiddenDim), // (T, H)
        h3: new Float32Array(n * this.hiddenDim), // (T, H)
      };
      this.scratchT = n;
    }
    return this.s;
  }

  /**
   * Runs the segments' new tokens and appends them to their caches. Positions continue from
   * each cache's length. Throws (without touching any cache) if a segment would overflow.
   */
  forward(segments: readonly Segment[], opts: ForwardOptions = {}): ForwardResult {
    const c = this.config;
    const be = this.backend;
    const mode = opts.logits ?? 'all';
    const HS = this.headSize;
    const kvW = c.n_kv_heads * HS;
    let T = 0;
    for (const seg of segments) {
      if (seg.tokens.length === 0) throw new Llama2Error("forward: a segment has no tokens");
      if (seg.cache.length + seg.tokens.length > seg.cache.capacity) {
        throw new Llama2Error(
          `context overflow: ${seg.cache.length} cached + ${seg.tokens.length} new tokens exceed the context of ${seg.cache.capacity}`,
        );
      }
      T += seg.tokens.length;
    }
    const ids = new Int32Array(T);
    const pos = new Int32Array(T);
    {
      let t = 0;
      for (const seg of segments) {
        for (let i = 0; i < seg.tokens.length; i++, t++) {
          const id = seg.tokens[i]!;
          if (!Number.isInteger(id) || id < 0 || id >= c.vocab_size) {
            throw new Llama2Error(`token id ${id} is outside the model's vocabulary (0..${c.vocab_size - 1})`);
          }
          ids[t] = id;
          pos[t] = seg.cache.length + i;
        }
      }
    }
    const tails = logitTails(segments, mode);
    const engine = this.prepared();
    if (engine) return this.forwardEngine(engine, segments, ids, tails, opts.hidden ?? false, opts.logitsOut);
    const s = this.scratch(T);
    const x = s.x.subarray(0, T * c.dim); // (T, C)
    be.embedding(x, this.weights.tok_embeddings, ids);

    for (let l = 0; l < c.n_layers; l++) {
      const lw = this.weights.layers[l]!;
      // attention block: x += wo · attn(rope(wq·n(x)), rope(wk·n(x)), wv·n(x))
      be.rmsnorm(s.xb, x, this.attnNorm[l]!, T, c.norm_eps); // (T, C)
      be.matmul(s.q, s.xb, lw.wq, T); // (T, NH*HS)
      be.matmul(s.k, s.xb, lw.wk, T); // (T, NKV*HS)
      be.matmul(s.v, s.xb, lw.wv, T); // (T, NKV*HS)
      be.rope(s.q, T, c.n_heads, HS, pos, c.rope_theta);
      be.rope(s.k, T, c.n_kv_heads, HS, pos, c.rope_theta);
      let t0 = 0;
      for (const seg of segments) {
        const n = seg.tokens.length;
        const p0 = seg.cache.length;
        seg.cache.k[l]!.set(s.k.subarray(t0 * kvW, (t0 + n) * kvW), p0 * kvW);
        seg.cache.v[l]!.set(s.v.subarray(t0 * kvW, (t0 + n) * kvW), p0 * kvW);
        be.attention(
          s.att.subarray(t0 * c.dim, (t0 + n) * c.dim), s.q.subarray(t0 * c.dim, (t0 + n) * c.dim),
          seg.cache.k[l]!, seg.cache.v[l]!, n, p0, c.n_heads, c.n_kv_heads, HS,
        ); // (n, NH*HS)
        t0 += n;
      }
      be.matmul(s.xb, s.att, lw.wo, T); // (T, C)
      be.add(x, s.xb, T * c.dim);
      // FFN block: x += w2 · (silu(w1·n(x)) * w3·n(x))
      be.rmsnorm(s.xb, x, this.ffnNorm[l]!, T, c.norm_eps);
      be.matmul(s.h1, s.xb, lw.w1, T); // (T, H)
      be.matmul(s.h3, s.xb, lw.w3, T); // (T, H)
      be.swiglu(s.h1, s.h3, T * this.hiddenDim);
      be.matmul(s.xb, s.h1, lw.w2, T); // (T, C)
      be.add(x, s.xb, T * c.dim);
    }
    for (const seg of segments) seg.cache.length += seg.tokens.length;

    be.rmsnorm(x, x, this.finalNorm, T, c.norm_eps); // (T, C) final hidden states
    const rows = logitRows(segments, tails);
    const out = logitsBuffer(opts.logitsOut, rows.length * c.vocab_size); // (rows, V)
    if (rows.length === T) be.matmul(out, x, this.weights.output, T);
    else if (rows.length > 0) {
      // gather the rows that get logits (e.g. each segment's last), then one matmul over the head
      const sel = new Float32Array(rows.length * c.dim); // (rows, C)
      rows.forEach((t, i) => sel.set(x.subarray(t * c.dim, (t + 1) * c.dim), i * c.dim));
      be.matmul(out, sel, this.weights.output, rows.length);
    }
    return splitResult(segments, tails, out, opts.hidden ? x : null, c);
  }

  /** forward() through the backend's engine: the same computation in one call. */
  private forwardEngine(
    engine: PreparedModel, segments: readonly Segment[], ids: Int32Array, tails: Int32Array, wantHidden: boolean,
    logitsOut?: Float32Array,
  ): ForwardResult {
    const c = this.config;
    const T = ids.length;
    const rows = logitRows(segments, tails);
    const logits = logitsBuffer(logitsOut, rows.length * c.vocab_size); // (rows, V)
    const hidden = wantHidden ? new Float32Array(T * c.dim) : null; // (T, C)
    engine.forward(
      ids, segments.map((seg) => ({ n: seg.tokens.length, pos0: seg.cache.length, k: seg.cache.k, v: seg.cache.v })),
      rows, logits, hidden,
    );
    for (const seg of segments) seg.cache.length += seg.tokens.length;
    return splitResult(segments, tails, logits, hidden, c);
  }

  /**
   * Convenience: one sequence, new tokens appended to `cache`; logits (T, V) or (1, V), written
   * into `out` when given (see ForwardOptions.logitsOut).
   */
  step(tokens: ArrayLike<number>, cache: KVCache, logits: LogitsMode = 'last', out?: Float32Array): Float32Array {
    return this.forward([{ tokens, cache }], { logits, logitsOut: out }).logits[0] ?? new Float32Array(0);
  }
}
