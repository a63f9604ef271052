/**
 * Naive float64 forwards of the Llama-2 ops, written independently of src/ (no tape, no backend):
 * the references that gradient checks differentiate by finite differences (tests/train-ops.test.ts
 * per op, tests/ppo-tape.test.ts through a whole model with llamaHidden64).
 *
 * Legend: N = rows, K = in features, C = dim, NH / NKV = heads, HS = head size, V = vocab.
 */
import type { LlamaConfig } from '../../src/model/config.js';
export function linear64(x: Float64Array, w: Float64Array, K: number): Float64Array {
  const N = x.length / K;
  const M = w.length / K;
  const y = new Float64Array(N * M);
  for (let n = 0; n < N; n++) for (let m = 0; m < M; m++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += x[n * K + k]! * w[m * K + k]!;
    y[n * M + m] = s;
  }
  return y;
}

export function rmsnorm64(x: Float64Array, g: Float64Array, eps: number): Float64Array {
  const C = g.length;
  const y = new Float64Array(x.length);
  for (let o = 0; o < x.length; o += C) {
    let ss = 0;
    for (let i = 0; i < C; i++) ss += x[o + i]! ** 2;
    const r = 1 / Math.sqrt(ss / C + eps);
    for (let i = 0; i < C; i++) y[o + i] = x[o + i]! * r * g[i]!;
  }
  return y;
}

export function rope64(x: Float64Array, nH: number, HS: number, pos: Int32Array, theta: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let t = 0; t < pos.length; t++) for (let h = 0; h < nH; h++) for (let i = 0; i < HS / 2; i++) {
    const a = pos[t]! * Math.pow(theta, (-2 * i) / HS);
    const o = t * nH * HS + h * HS + 2 * i;
    y[o] = x[o]! * Math.cos(a) - x[o + 1]! * Math.sin(a);
    y[o + 1] = x[o]! * Math.sin(a) + x[o + 1]! * Math.cos(a);
  }
  return y;
}

/** causal attention; with starts (B*T), query t of row b sees keys starts[b*T + t] ≤ s ≤ t only */
export function attention64(
  q: Float64Array, k: Float64Array, v: Float64Array, B: number, T: number, NH: number, NKV: number, HS: number, starts?: Int32Array,
): Float64Array {
  const out = new Float64Array(q.length);
  for (let b = 0; b < B; b++) for (let h = 0; h < NH; h++) {
    const j = Math.floor(h / (NH / NKV));
    for (let t = 0; t < T; t++) {
      const s0 = starts ? starts[b * T + t]! : 0;
      const sc: number[] = [];
      for (let s = s0; s <= t; s++) {
        let d = 0;
        for (let c = 0; c < HS; c++) d += q[(b * T + t) * NH * HS + h * HS + c]! * k[(b * T + s) * NKV * HS + j * HS + c]!;
        sc.push(d / Math.sqrt(HS));
      }
      const mx = Math.max(...sc);
      const e = sc.map((z) => Math.exp(z - mx));
      const sum = e.reduce((a, z) => a + z, 0);
      for (let c = 0; c < HS; c++) {
        let o = 0;
        for (let s = s0; s <= t; s++) o += (e[s - s0]! / sum) * v[(b * T + s) * NKV * HS + j * HS + c]!;
        out[(b * T + t) * NH * HS + h * HS + c] = o;
      }
    }
  }
  return out;
}

export function logprobs64(x: Float64Array, tg: Int32Array, V: number): Float64Array {
  return Float64Array.from(tg, (t, n) => {
    const row = x.subarray(n * V, n * V + V);
    const mx = Math.max(...row);
    let s = 0;
    for (const z of row) s += Math.exp(z - mx);
    return row[t]! - mx - Math.log(s);
  });
}


/**
 * The final-RMSNorm'ed hidden states (B*T, C) of a Llama-2 model over tokens (B*T), each row at
 * positions 0..T-1; w(name) gives a weight by Meta name (`layers.0.attention.wq.weight`, ...).
 */
export function llamaHidden64(c: LlamaConfig, w: (name: string) => Float64Array, tokens: Int32Array, B: number, T: number): Float64Array {
  const C = c.dim, NH = c.n_heads, NKV = c.n_kv_heads, HS = C / NH, eps = c.norm_eps;
  const pos = Int32Array.from({ length: B * T }, (_, n) => n % T);
  const emb = w('tok_embeddings.weight');
  let x = new Float64Array(B * T * C); // (N, C)
  tokens.forEach((id, n) => x.set(emb.subarray(id * C, id * C + C), n * C));
  const addTo = (a: Float64Array, b: Float64Array) => a.map((v, i) => v + b[i]!);
  for (let l = 0; l < c.n_layers; l++) {
    const L = (k: string) => w(`layers.${l}.${k}.weight`);
    const xn = rmsnorm64(x, L('attention_norm'), eps);
    const q = rope64(linear64(xn, L('attention.wq'), C), NH, HS, pos, c.rope_theta); // (N, NH*HS)
    const k = rope64(linear64(xn, L('attention.wk'), C), NKV, HS, pos, c.rope_theta); // (N, NKV*HS)
    const v = linear64(xn, L('attention.wv'), C); // (N, NKV*HS)
    const h = addTo(x, linear64(attention64(q, k, v, B, T, NH, NKV, HS), L('attention.wo'), NH * HS)); // (N, C)
    const hn = rmsnorm64(h, L('ffn_norm'), eps);
    const a = linear64(hn, L('feed_forward.w1'), C); // (N, H)
    const b = linear64(hn, L('feed_forward.w3'), C);
    const g = a.map((z, i) => (z / (1 + Math.exp(-z))) * b[i]!);
    x = addTo(h, linear64(g, L('feed_forward.w2'), a.length / (B * T)));
  }
  return rmsnorm64(x, w('norm.weight'), eps);
}
