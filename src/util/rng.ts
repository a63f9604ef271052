/**
 * The project's one seeded pseudo-random generator: xoshiro128** seeded through splitmix32, with
 * exact uniform integers (rejection sampling, so `below(n)` has probability exactly 1/n per
 * value), uniform floats, normal samples (Box–Muller) and Fisher–Yates permutations. Everything
 * random in llama2-ts draws from it: corpora and chat worlds (src/data, src/world), batch order,
 * initial weights (src/train/params.ts) and token sampling (src/generate/sampler.ts).
 *
 *   const rng = new Rng(hashSeed(seed, storyIndex));
 *   rng.below(6);              // 0..5, each with probability exactly 1/6
 *
 * Streams are addressed by integer tuples (`hashSeed(seed, i)`), so item i of a corpus or epoch e
 * of a shuffle can be produced without producing the ones before it.
 *
 * What it is not: a cryptographic generator, and not Math.random (never used for anything seeded).
 */

/** splitmix32 finalizer: a well-mixed 32-bit function of a 32-bit input. */
function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * Hashes a tuple of non-negative safe integers (e.g. seed, index) to a 32-bit seed. Each part
 * contributes its low and high 32 bits, so seeds up to 2^53 are all distinct inputs.
 */
export function hashSeed(...parts: number[]): number {
  let h = 0x243f6a88;
  for (const p of parts) {
    if (!Number.isSafeInteger(p) || p < 0) throw new RangeError(`hashSeed: expected non-negative safe integers but found ${p}`);
    const lo = p >>> 0;
    const hi = Math.floor(p / 0x100000000) >>> 0;
    h = mix32(h ^ lo);
    h = mix32(h ^ hi ^ 0x5bd1e995);
  }
  return h;
}

/** xoshiro128** (Blackman & Vigna) over four 32-bit words. */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    // splitmix32 expands the seed into the state; the state is never all zero
    let x = seed >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      return mix32(x);
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next() | 1;
  }

  /** The next uniform 32-bit unsigned integer. */
  nextU32(): number {
    const r = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return r;
  }

  /** A uniform integer in [0, n), 1 <= n <= 2^32, each value with probability exactly 1/n. */
  below(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 0x100000000) throw new RangeError(`Rng.below: expected 1 <= n <= 2^32 but found ${n}`);
    const limit = 0x100000000 - (0x100000000 % n); // largest multiple of n not above 2^32
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** A uniform float in [0, 1) with 32 random bits. */
  float(): number {
    return this.nextU32() / 0x100000000;
  }

  /** Same as float(): a uniform float in [0, 1). */
  next(): number {
    return this.nextU32() / 0x100000000;
  }

  /** An element of `items` chosen uniformly. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('Rng.pick: expected a non-empty array');
    return items[this.below(items.length)]!;
  }
}

/** A uniform [0, 1) function of a seed (for code that wants a plain () => number). */
export function uniform(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.float();
}

/** Fills `a` with N(0, std²) samples (Box–Muller over `rand`, two values per pair of draws). */
export function fillNormal(a: Float32Array, std: number, rand: () => number): void {
  for (let i = 0; i < a.length; i += 2) {
    const u = 1 - rand(); // (0, 1]
    const r = std * Math.sqrt(-2 * Math.log(u));
    const th = 2 * Math.PI * rand();
    a[i] = r * Math.cos(th);
    if (i + 1 < a.length) a[i + 1] = r * Math.sin(th);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A uniformly random permutation of 0..n-1 (Fisher–Yates). */
export function permutation(n: number, rng: Rng): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}
