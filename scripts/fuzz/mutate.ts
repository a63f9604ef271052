/**
 * Mutations for the fuzz harness (scripts/fuzz/): deterministic functions of an Rng that turn a
 * valid input into a broken one. Binary inputs get bit flips, random bytes, "interesting" integers
 * (0, −1, 2³¹, 2⁶³, the file's size ± 1, …) written as u8…u64 at offsets biased towards the file's
 * header regions, float specials, truncation, and inserted, deleted or repeated ranges. JSON inputs
 * are mutated as JSON (a value swapped for one of another type, a huge or negative number, a long
 * string, a deep nesting, a key removed or repeated) and then, sometimes, as bytes.
 *
 * What it is not: the readers' harness (targets.ts) or the process that runs cases (worker.ts).
 */
import type { Rng } from '../../src/util/rng.js';

/** [start, end) byte ranges where a format keeps its counts, lengths, offsets and types. */
export type Regions = readonly (readonly [number, number])[];

const U64_INTERESTING = [0n, 1n, 2n, 0x7fn, 0x80n, 0xffn, 0x7fffn, 0x8000n, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn,
  0x100000000n, (1n << 53n) - 1n, 1n << 53n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n];
const F32_SPECIAL = [NaN, Infinity, -Infinity, -0, 0, 1e38, -1e38, 1e-45, 65504, 3.4028235e38];

/** An offset in [0, len): in a header region with probability 0.8 when there are any. */
function offset(rng: Rng, len: number, hot: Regions): number {
  if (len === 0) return 0;
  if (hot.length > 0 && rng.float() < 0.8) {
    const [a, b] = rng.pick(hot);
    const end = Math.min(b, len);
    if (end > a) return a + rng.below(end - a);
  }
  return rng.below(len);
}

function interesting(rng: Rng, size: number): bigint {
  const r = rng.float();
  if (r < 0.6) return rng.pick(U64_INTERESTING);
  if (r < 0.8) return BigInt(Math.max(0, size + rng.below(9) - 4)); // around the file's size
  return BigInt(rng.below(0x7fffffff)) * BigInt(1 + rng.below(8));
}

/** One binary mutation, returning a new array (the input is not changed). */
export function mutateBytes(rng: Rng, input: Uint8Array, hot: Regions): Uint8Array {
  const b = new Uint8Array(input);
  const len = b.length;
  const op = rng.below(10);
  switch (op) {
    case 0: { // flip 1-8 bits
      for (let k = 1 + rng.below(8); k > 0 && len > 0; k--) { const o = offset(rng, len, hot); b[o] = b[o]! ^ (1 << rng.below(8)); }
      return b;
    }
    case 1: { // random bytes
      for (let k = 1 + rng.below(4); k > 0 && len > 0; k--) b[offset(rng, len, hot)] = rng.below(256);
      return b;
    }
    case 2: case 3: case 4: { // an interesting integer, 1/2/4/8 bytes, little-endian
      if (len === 0) return b;
      const width = rng.pick([1, 2, 4, 8, 8, 4]);
      const o = Math.min(offset(rng, len, hot), Math.max(0, len - width));
      let v = interesting(rng, len);
      if (rng.float() < 0.2) v = (1n << BigInt(8 * width)) - 1n - (v & ((1n << BigInt(8 * width)) - 1n)); // its "negative"
      for (let i = 0; i < width && o + i < len; i++) b[o + i] = Number((v >> BigInt(8 * i)) & 0xffn);
      return b;
    }
    case 5: { // a float special (scores, eps, theta, scales)
      if (len < 4) return b;
      const o = Math.min(offset(rng, len, hot), len - 4);
      new DataView(b.buffer).setFloat32(o, rng.pick(F32_SPECIAL), true);
      return b;
    }
    case 6: // truncate
      return b.subarray(0, offset(rng, len + 1, rng.float() < 0.5 ? hot : []));
    case 7: { // delete a range
      const o = offset(rng, len, hot);
      const n = 1 + rng.below(Math.min(64, Math.max(1, len - o)));
      return concat(b.subarray(0, o), b.subarray(o + n));
    }
    case 8: { // insert random bytes
      const o = offset(rng, len + 1, hot);
      const ins = new Uint8Array(1 + rng.below(16)).map(() => rng.below(256));
      return concat(b.subarray(0, o), ins, b.subarray(o));
    }
    default: { // repeat a range
      if (len === 0) return b;
      const o = offset(rng, len, hot);
      const n = 1 + rng.below(Math.min(256, len - o));
      return concat(b.subarray(0, o + n), b.subarray(o, o + n), b.subarray(o + n));
    }
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

// ---------------------------------------------------------------------------------------------
// JSON

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function strangeValue(rng: Rng): Json {
  switch (rng.below(12)) {
    case 0: return null;
    case 1: return rng.float() < 0.5;
    case 2: return rng.pick([-1, 0, 1, 1.5, -0.5, 1e308, -1e308, 2 ** 53 + 2, 2 ** 63, 4294967296, 2147483648, 1e-300]);
    case 3: return '';
    case 4: return 'x'.repeat(1 + rng.below(200_000)); // a long string
    case 5: return rng.pick(['\u0000', '\ud800', '<s>', '</s>', '▁', 'F32', 'BF16', 'Q4_K', 'llama', 'user', 'assistant', 'system', '[INST]']);
    case 6: return [];
    case 7: return {};
    case 8: { let v: Json = 1; for (let d = 0; d < 2 + rng.below(3000); d++) v = [v]; return v; } // deep nesting
    case 9: return Array.from({ length: 1 + rng.below(2000) }, (_, i) => i);
    case 10: return { dtype: 'F32', shape: [1 + rng.below(1 << 20), 1 + rng.below(1 << 20)], data_offsets: [0, rng.below(1 << 30)] };
    default: return -rng.below(1 << 30);
  }
}

/** All (container, key) slots of a JSON value, up to `limit`. */
function slots(v: Json, out: [Json[] | { [k: string]: Json }, string | number][], limit: number): void {
  if (out.length >= limit || v === null || typeof v !== 'object') return;
  if (Array.isArray(v)) v.forEach((x, i) => { out.push([v, i]); slots(x, out, limit); });
  else for (const k of Object.keys(v)) { out.push([v, k]); slots(v[k]!, out, limit); }
}

/** One structural mutation of a JSON value (changed in place); returns the value. */
export function mutateJsonValue(rng: Rng, root: Json): Json {
  const all: [Json[] | { [k: string]: Json }, string | number][] = [];
  slots(root, all, 50_000);
  if (all.length === 0) return strangeValue(rng);
  const [c, k] = rng.pick(all);
  const cur = (c as Record<string | number, Json>)[k]!;
  const op = rng.below(6);
  if (op === 0) { // remove
    if (Array.isArray(c)) c.splice(k as number, 1);
    else delete (c as Record<string, Json>)[k as string];
  } else if (op === 1 && typeof cur === 'number') { // nudge a number
    (c as Record<string | number, Json>)[k] = rng.pick([cur + 1, cur - 1, cur * 2, -cur, cur * 1e6, cur + 0.5, cur * 2 ** 32]);
  } else if (op === 2 && !Array.isArray(c)) { // rename the key (a required field goes missing, an unknown one appears)
    delete (c as Record<string, Json>)[k as string];
    (c as Record<string, Json>)[rng.pick(['', '__proto__', 'constructor', `${String(k)}_`, String(k).toUpperCase()])] = cur;
  } else if (op === 3 && Array.isArray(cur) && cur.length > 0) { // grow or shrink an array
    if (rng.float() < 0.5) cur.length = rng.below(cur.length);
    else for (let n = rng.below(64); n > 0; n--) cur.push(cur[rng.below(cur.length)]!);
  } else {
    (c as Record<string | number, Json>)[k] = strangeValue(rng);
  }
  return root;
}

/**
 * A mutated JSON text: structural mutations when the text parses, then byte mutations with
 * probability 0.3 (broken syntax, bad UTF-8), or a duplicated key at the text level.
 */
export function mutateJsonText(rng: Rng, text: Uint8Array): Uint8Array {
  let out = text;
  const dec = new TextDecoder('utf-8', { fatal: false });
  let v: Json | undefined;
  try { v = JSON.parse(dec.decode(text)) as Json; } catch { v = undefined; }
  if (v !== undefined && rng.float() < 0.85) {
    for (let n = 1 + rng.below(3); n > 0; n--) v = mutateJsonValue(rng, v!);
    out = new TextEncoder().encode(JSON.stringify(v));
  }
  if (rng.float() < 0.3) out = mutateBytes(rng, out, []);
  return out;
}
