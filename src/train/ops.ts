/**
 * The fused ops of the Llama-2 training graph, each a forward that records its backward on the
 * tape: embedding, linear, RMSNorm, RoPE, causal GQA attention, SwiGLU, residual add.
 * Losses are in loss.ts, the reward head and ranking loss in reward.ts.
 *
 * Every kernel is the tape's backend's (src/backend/types.ts, forward kernels and the "training
 * kernels"), so the native backend runs the whole step natively; the embedding is a row copy here.
 * Linear layers go through backend.gemm: forward NT (y = x·Wᵀ), input gradient NN (dx += dy·W;
 * a GEMM that overwrites when dx is new, see Tape.gradSlot), weight gradient TN (dW += dyᵀ·x),
 * accumulating into the parameter's persistent gradient. Gradient buffers an op is the last to
 * read may become another's (add, rope: no copy). Every op reads its inputs' data again in the
 * backward, so no op may overwrite an input's data in place (the cross-entropy in loss.ts is the
 * one exception, and checks that it is safe).
 *
 * Legend: N = rows (B*T tokens), C = dim, K = in features, M = out features, H = FFN hidden,
 * NH / NKV = heads, HS = head size.
 */
import type { Tape, Var } from './tape.js';
import { embeddingBackward, embeddingForward } from './kernels.js';
import { attentionBackward, attentionForward, attnLseSize, type AttnShape } from './attention.js';

function cols(v: Var): number {
  return v.shape[v.shape.length - 1]!;
}

function rows(v: Var): number {
  return v.data.length / cols(v);
}

function checkShape(what: string, ok: boolean, detail: () => string): void {
  if (!ok) throw new Error(`${what}: ${detail()}`);
}

/** (N, C) rows of `table` (V, C) picked by ids (N). */
export function embedding(tape: Tape, table: Var, ids: Int32Array): Var {
  const C = cols(table);
  const out = tape.output([ids.length, C], table); // (N, C)
  embeddingForward(out.data, table.data, ids, C);
  tape.record(out, (dout) => {
    if (table.requiresGrad) embeddingBackward(tape.grad(table), dout, ids, C);
  });
  return out;
}

/** y (N, M) = x (N, K) · Wᵀ, W (M, K) as PyTorch stores nn.Linear weights. */
export function linear(tape: Tape, x: Var, w: Var): Var {
  const [M, K] = w.shape as [number, number];
  const N = rows(x);
  checkShape('linear', cols(x) === K, () => `input has ${cols(x)} features, weight [${w.shape.join(', ')}] expects ${K}`);
  const y = tape.output([N, M], x, w); // (N, M)
  tape.backend.gemm(y.data, x.data, w.data, N, M, K, 'NT', false);
  tape.record(y, (dy) => {
    if (x.requiresGrad) {
      const { grad, accumulate } = tape.gradSlot(x);
      tape.backend.gemm(grad, dy, w.data, N, K, M, 'NN', accumulate); // dx (N, K) (+)= dy·W
    }
    if (w.requiresGrad) tape.backend.gemm(tape.grad(w), dy, x.data, M, K, N, 'TN', true); // dW (M, K) += dyᵀ·x
  });
  return y;
}

/** y (N, C) = x / sqrt(mean(x²) + eps) · g, per row. */
export function rmsnorm(tape: Tape, x: Var, g: Var, eps: number): Var {
  const C = g.data.length;
  const N = rows(x);
  checkShape('rmsnorm', cols(x) === C, () => `input has ${cols(x)} features, weight has ${C}`);
  const y = tape.output([N, C], x, g);
  tape.backend.rmsnorm(y.data, x.data, g.data, N, eps);
  tape.record(y, (dy) => {
    if (!x.requiresGrad && !g.requiresGrad) return;
    tape.backend.rmsnormBackward(x.requiresGrad ? tape.grad(x) : null, g.requiresGrad ? tape.grad(g) : null, dy, x.data, g.data, N, eps);
  });
  return y;
}

/** Rotary embedding of x (N, nHeads*HS); row n is at position pos[n]. Out of place. */
export function rope(tape: Tape, x: Var, nHeads: number, headSize: number, pos: Int32Array, theta: number): Var {
  const N = rows(x);
  checkShape('rope', cols(x) === nHeads * headSize && pos.length === N, () => `x [${x.shape.join(', ')}], ${nHeads}×${headSize} heads, ${pos.length} positions`);
  const y = tape.output(x.shape, x);
  tape.backend.ropeRotate(y.data, x.data, N, nHeads, headSize, pos, theta, false, false);
  tape.record(y, (dy) => {
    // dx += rotate(dy) by −angle (a rotation's transpose); dy can become dx when it is x's first gradient
    if (!x.requiresGrad) return;
    if (!x.grad) {
      tape.backend.ropeRotate(dy, dy, N, nHeads, headSize, pos, theta, true, false);
      x.grad = dy;
    } else {
      tape.backend.ropeRotate(x.grad, dy, N, nHeads, headSize, pos, theta, true, true);
    }
  });
  return y;
}

/**
 * Causal self-attention over B rows of T positions (block-diagonal over packed segments when
 * s.starts is given): q (B*T, NH*HS), k, v (B*T, NKV*HS), already rotated. Returns (B*T, NH*HS). Saves one log-sum-exp per query row and head; the backward
 * recomputes the probabilities from it (see attention.ts).
 */
export function attention(tape: Tape, q: Var, k: Var, v: Var, s: AttnShape): Var {
  const N = s.B * s.T;
  checkShape('attention', q.data.length === N * s.NH * s.HS && k.data.length === N * s.NKV * s.HS && v.data.length === k.data.length,
    () => `q [${q.shape.join(', ')}], k [${k.shape.join(', ')}], v [${v.shape.join(', ')}] for B=${s.B} T=${s.T} NH=${s.NH} NKV=${s.NKV} HS=${s.HS}`);
  const out = tape.output([N, s.NH * s.HS], q, k, v);
  const lse = tape.scratch(attnLseSize(s)); // (B, NH, T)
  attentionForward(tape.backend, out.data, lse, q.data, k.data, v.data, s);
  tape.record(out, (dout) => {
    attentionBackward(tape.backend, q.requiresGrad ? tape.grad(q) : null, k.requiresGrad ? tape.grad(k) : null,
      v.requiresGrad ? tape.grad(v) : null, dout, q.data, k.data, v.data, out.data, lse, s);
  });
  return out;
}

/** h = silu(a) · b, elementwise (the SwiGLU gate: a = x·W1ᵀ, b = x·W3ᵀ). */
export function swiglu(tape: Tape, a: Var, b: Var): Var {
  checkShape('swiglu', a.data.length === b.data.length, () => `gate has ${a.data.length} values, up has ${b.data.length}`);
  const h = tape.output(a.shape, a, b);
  tape.backend.swigluForward(h.data, a.data, b.data, a.data.length);
  tape.record(h, (dh) => {
    if (!a.requiresGrad && !b.requiresGrad) return;
    tape.backend.swigluBackward(a.requiresGrad ? tape.grad(a) : null, b.requiresGrad ? tape.grad(b) : null, dh, a.data, b.data, a.data.length);
  });
  return h;
}

/** out = a + b (the residual connection). */
export function add(tape: Tape, a: Var, b: Var): Var {
  checkShape('add', a.data.length === b.data.length, () => `${a.data.length} vs ${b.data.length} values`);
  const out = tape.output(a.shape, a, b);
  out.data.set(a.data);
  tape.backend.add(out.data, b.data, out.data.length);
  tape.record(out, (dout) => {
    for (const x of [a, b]) {
      if (!x.requiresGrad) continue;
      // the first gradient of x can simply be dout's buffer (dout is final once this op runs),
      // but only one of a/b may take it over
      if (!x.grad && x === a) x.grad = dout;
      else tape.backend.add(tape.grad(x), dout, dout.length);
    }
  });
  return out;
}
