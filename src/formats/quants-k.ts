/**
 * ggml's K-quants: 256-value super-blocks split into sub-blocks that carry their own quantized
 * scale (and min), scaled again by one or two f16 super-block factors. Decoding follows ggml's
 * definitions (ggml-common.h); entry points are in quants.ts. Byte layouts, all little-endian:
 *
 *   Q2_K  (84 B)  u8 scales[16], u8 qs[64], f16 d, f16 dmin
 *                 16 sub-blocks of 16; scales[i] = sc | m << 4; x = d·sc·q2 − dmin·m
 *   Q3_K  (110 B) u8 hmask[32], u8 qs[64], u8 scales[12], f16 d
 *                 16 sub-blocks of 16; 6-bit scales s (stored + 32); q3 = low2 − (hmask bit ? 0 : 4);
 *                 x = d·(s − 32)·q3
 *   Q4_K  (144 B) f16 d, f16 dmin, u8 scales[12], u8 qs[128]
 *                 8 sub-blocks of 32; 6-bit sc/m packed as in scaleMinK4; x = d·sc·q4 − dmin·m
 *   Q5_K  (176 B) f16 d, f16 dmin, u8 scales[12], u8 qh[32], u8 qs[128]   (q5 = q4 | qh bit << 4)
 *   Q6_K  (210 B) u8 ql[128], u8 qh[64], i8 scales[16], f16 d
 *                 16 sub-blocks of 16; q6 = (ql nibble | 2 qh bits << 4) − 32; x = d·scale·q6
 *
 * Value order inside a super-block: Q2_K/Q3_K/Q6_K walk 128-value halves; in half n, 2-bit plane
 * j (bits 2j..2j+1 of qs[32n + l]) holds values 128n + 32j + l. Q4_K/Q5_K walk 64-value quarters:
 * value 64c + l is the low nibble of qs[32c + l], value 64c + 32 + l the high nibble.
 *
 * Encoders: valid, simple round-to-nearest. Each sub-block's scale/min comes from its own min/max
 * (absolute max for the symmetric Q3_K/Q6_K), the scales are quantized against the largest one,
 * and values are then rounded against the quantized scales. ggml's reference K quantizers search
 * iteratively for better scales (make_qkx2_quants / make_qx_quants), so theirs have a little less
 * error; files written here still decode exactly by any ggml reader. Inputs must be finite.
 */
import { f16Table, f32ToF16, roundHalfAway } from '../dtype.js';

export type KQuantDType = 'Q2_K' | 'Q3_K' | 'Q4_K' | 'Q5_K' | 'Q6_K';

const QK = 256;

function f16At(tab: Float32Array, src: Uint8Array, p: number): number {
  return tab[src[p]! | (src[p + 1]! << 8)]!;
}

/** Writes v as f16 at dst[p] and returns the value the decoder will see. */
function putF16(dst: Uint8Array, p: number, v: number): number {
  const h = f32ToF16(v);
  dst[p] = h & 0xff;
  dst[p + 1] = h >> 8;
  return f16Table()[h]!;
}

/**
 * The 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes at q[p ..] (Q4_K/Q5_K):
 * j < 4: sc = q[j] & 63, m = q[j+4] & 63; j >= 4: the low 4 bits come from q[j+4] (sc low nibble,
 * m high nibble) and the top 2 bits from bits 6-7 of q[j-4] (sc) and q[j] (m).
 */
export function scaleMinK4(q: Uint8Array, p: number, j: number): [number, number] {
  if (j < 4) return [q[p + j]! & 63, q[p + j + 4]! & 63];
  const b = q[p + j + 4]!;
  return [(b & 15) | ((q[p + j - 4]! >> 6) << 4), (b >> 4) | ((q[p + j]! >> 6) << 4)];
}

/** Inverse of scaleMinK4: packs eight 6-bit scales and mins into dst[p .. p+12). */
function packScaleMinK4(sc: Uint8Array, mn: Uint8Array, dst: Uint8Array, p: number): void {
  for (let j = 0; j < 4; j++) {
    dst[p + j] = sc[j]! | ((sc[j + 4]! >> 4) << 6);
    dst[p + j + 4] = mn[j]! | ((mn[j + 4]! >> 4) << 6);
    dst[p + j + 8] = (sc[j + 4]! & 15) | ((mn[j + 4]! & 15) << 4);
  }
}

/** The 16 signed 6-bit Q3_K scales (already minus 32) from the 12 bytes at q[p ..]. */
export function scalesQ3K(q: Uint8Array, p: number, out: Int8Array): void {
  for (let i = 0; i < 16; i++) {
    const low = i < 8 ? q[p + i]! & 15 : q[p + i - 8]! >> 4;
    const high = (q[p + 8 + (i & 3)]! >> (2 * (i >> 2))) & 3;
    out[i] = (low | (high << 4)) - 32;
  }
}

function packScalesQ3K(s: Uint8Array, dst: Uint8Array, p: number): void {
  dst.fill(0, p, p + 12);
  for (let i = 0; i < 16; i++) {
    const v = s[i]!; // 0..63
    const lo = p + (i & 7);
    const hi = p + 8 + (i & 3);
    dst[lo] = dst[lo]! | (i < 8 ? v & 15 : (v & 15) << 4);
    dst[hi] = dst[hi]! | ((v >> 4) << (2 * (i >> 2)));
  }
}

// ---------------------------------------------------------------------------------------------
// decoding

export function dequantizeK(
  dtype: KQuantDType, src: Uint8Array, srcOff: number, nBlocks: number, dst: Float32Array, dstOff: number,
): void {
  const tab = f16Table();
  const s3 = new Int8Array(16);
  const ds = new Float64Array(8); // Q6_K: d · scale (exact, as ggml's f32 product is)
  for (let b = 0; b < nBlocks; b++) {
    const o = dstOff + b * QK;
    switch (dtype) {
      case 'Q2_K': {
        const p = srcOff + b * 84; // scales[16] @0, qs[64] @16, d @80, dmin @82
        const d = f16At(tab, src, p + 80);
        const dmin = f16At(tab, src, p + 82);
        for (let i = 0; i < QK; i++) {
          const half = i >> 7;
          const plane = (i >> 5) & 3;
          const q = (src[p + 16 + 32 * half + (i & 31)]! >> (2 * plane)) & 3;
          const s = src[p + (i >> 4)]!;
          dst[o + i] = d * (s & 15) * q - dmin * (s >> 4);
        }
        break;
      }
      case 'Q3_K': {
        const p = srcOff + b * 110; // hmask[32] @0, qs[64] @32, scales[12] @96, d @108
        const d = f16At(tab, src, p + 108);
        scalesQ3K(src, p + 96, s3);
        for (let half = 0; half < 2; half++) {
          for (let plane = 0; plane < 4; plane++) {
            const shift = 2 * plane;
            const hbit = 1 << (4 * half + plane);
            const q = p + 32 + 32 * half;
            const y = o + 128 * half + 32 * plane;
            const dl0 = d * s3[8 * half + 2 * plane]!;
            const dl1 = d * s3[8 * half + 2 * plane + 1]!;
            for (let l = 0; l < 32; l++) {
              const v = ((src[q + l]! >> shift) & 3) - (src[p + l]! & hbit ? 0 : 4);
              dst[y + l] = (l < 16 ? dl0 : dl1) * v;
            }
          }
        }
        break;
      }
      case 'Q4_K':
      case 'Q5_K': {
        const five = dtype === 'Q5_K';
        const p = srcOff + b * (five ? 176 : 144); // d @0, dmin @2, scales @4, [qh[32] @16], qs
        const d = f16At(tab, src, p);
        const dmin = f16At(tab, src, p + 2);
        const qs = p + (five ? 48 : 16);
        for (let c = 0; c < 4; c++) {
          const [sc1, m1] = scaleMinK4(src, p + 4, 2 * c);
          const [sc2, m2] = scaleMinK4(src, p + 4, 2 * c + 1);
          const d1 = d * sc1, mm1 = dmin * m1, d2 = d * sc2, mm2 = dmin * m2;
          for (let l = 0; l < 32; l++) {
            const q = src[qs + 32 * c + l]!;
            let lo = q & 15;
            let hi = q >> 4;
            if (five) {
              const h = src[p + 16 + l]!;
              lo |= ((h >> (2 * c)) & 1) << 4;
              hi |= ((h >> (2 * c + 1)) & 1) << 4;
            }
            dst[o + 64 * c + l] = d1 * lo - mm1;
            dst[o + 64 * c + 32 + l] = d2 * hi - mm2;
          }
        }
        break;
      }
      case 'Q6_K': {
        const p = srcOff + b * 210; // ql[128] @0, qh[64] @128, scales[16] @192, d @208
        const d = f16At(tab, src, p + 208);
        for (let half = 0; half < 2; half++) {
          const ql = p + 64 * half;
          const qh = p + 128 + 32 * half;
          for (let k = 0; k < 8; k++) ds[k] = d * ((src[p + 192 + 8 * half + k]! << 24) >> 24); // int8 scales
          const y = o + 128 * half;
          for (let l = 0; l < 32; l++) {
            const is = l >> 4;
            const lo = src[ql + l]!, hi = src[ql + l + 32]!, h = src[qh + l]!;
            dst[y + l] = ds[is]! * (((lo & 15) | ((h & 3) << 4)) - 32);
            dst[y + l + 32] = ds[is + 2]! * (((hi & 15) | (((h >> 2) & 3) << 4)) - 32);
            dst[y + l + 64] = ds[is + 4]! * (((lo >> 4) | (((h >> 4) & 3) << 4)) - 32);
            dst[y + l + 96] = ds[is + 6]! * (((hi >> 4) | ((h >> 6) << 4)) - 32);
          }
        }
        break;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// encoding

/** Value with the largest magnitude (sign kept) in x[o .. o+n). */
function signedAbsMax(x: Float32Array, o: number, n: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < n; j++) {
    const v = x[o + j]!;
    if (Math.abs(v) > amax) { amax = Math.abs(v); max = v; }
  }
  return max;
}

/**
 * Asymmetric super-block (Q2_K: 16×16, nmax 3, 4-bit scales; Q4_K/Q5_K: 8×32, nmax 15/31,
 * 6-bit scales): per sub-block scale = (max − min)/nmax and min = −min(0, min x). Writes the
 * f16 d/dmin at `dAt`, returns the quantized scales/mins in ls/lm and the levels in q.
 */
function asymmetricBlock(
  x: Float32Array, xo: number, nSub: number, subLen: number, nmax: number, scaleMax: number,
  y: Uint8Array, dAt: number, ls: Uint8Array, lm: Uint8Array, q: Uint8Array,
): void {
  const scale = new Float64Array(nSub);
  const mins = new Float64Array(nSub);
  let maxScale = 0;
  let maxMin = 0;
  for (let s = 0; s < nSub; s++) {
    let mn = 0; // ggml clamps the min to <= 0
    let mx = -Infinity;
    for (let j = 0; j < subLen; j++) {
      const v = x[xo + s * subLen + j]!;
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    scale[s] = Math.max(0, (mx - mn) / nmax);
    mins[s] = -mn;
    maxScale = Math.max(maxScale, scale[s]!);
    maxMin = Math.max(maxMin, mins[s]!);
  }
  const d = putF16(y, dAt, maxScale / scaleMax);
  const dmin = putF16(y, dAt + 2, maxMin / scaleMax);
  for (let s = 0; s < nSub; s++) {
    ls[s] = d > 0 ? Math.min(scaleMax, Math.round(scale[s]! / d)) : 0;
    lm[s] = dmin > 0 ? Math.min(scaleMax, Math.round(mins[s]! / dmin)) : 0;
    const dl = d * ls[s]!;
    const ml = dmin * lm[s]!;
    for (let j = 0; j < subLen; j++) {
      const i = s * subLen + j;
      q[i] = dl > 0 ? Math.max(0, Math.min(nmax, Math.round((x[xo + i]! + ml) / dl))) : 0;
    }
  }
}

/**
 * Symmetric super-block of 16 sub-blocks of 16 (Q3_K: levels −4..3, 6-bit scales stored +32;
 * Q6_K: levels −32..31, int8 scales). Writes d at `dAt`; returns scales in sc, levels + bias in q.
 */
function symmetricBlock(
  x: Float32Array, xo: number, nmax: number, scaleMax: number, y: Uint8Array, dAt: number, sc: Int8Array, q: Uint8Array,
): void {
  const scale = new Float64Array(16);
  let maxScale = 0;
  for (let s = 0; s < 16; s++) {
    scale[s] = signedAbsMax(x, xo + 16 * s, 16) / -nmax; // the extreme value maps to −nmax
    if (Math.abs(scale[s]!) > Math.abs(maxScale)) maxScale = scale[s]!;
  }
  const iscale = maxScale !== 0 ? -scaleMax / maxScale : 0;
  const d = putF16(y, dAt, iscale !== 0 ? 1 / iscale : 0);
  for (let s = 0; s < 16; s++) {
    sc[s] = Math.max(-scaleMax, Math.min(scaleMax - 1, roundHalfAway(iscale * scale[s]!)));
    const dl = d * sc[s]!;
    for (let j = 0; j < 16; j++) {
      const i = 16 * s + j;
      const l = dl !== 0 ? Math.max(-nmax, Math.min(nmax - 1, roundHalfAway(x[xo + i]! / dl))) : 0;
      q[i] = l + nmax;
    }
  }
}

export function quantizeK(
  dtype: KQuantDType, x: Float32Array, xo: number, nBlocks: number, y: Uint8Array, yo: number,
): void {
  const q = new Uint8Array(QK);
  const ls = new Uint8Array(16);
  const lm = new Uint8Array(16);
  const sc = new Int8Array(16);
  for (let b = 0; b < nBlocks; b++, xo += QK) {
    switch (dtype) {
      case 'Q2_K': {
        const p = yo + b * 84;
        asymmetricBlock(x, xo, 16, 16, 3, 15, y, p + 80, ls, lm, q);
        for (let s = 0; s < 16; s++) y[p + s] = ls[s]! | (lm[s]! << 4);
        y.fill(0, p + 16, p + 80);
        for (let i = 0; i < QK; i++) {
          const a = p + 16 + 32 * (i >> 7) + (i & 31);
          y[a] = y[a]! | (q[i]! << (2 * ((i >> 5) & 3)));
        }
        break;
      }
      case 'Q3_K': {
        const p = yo + b * 110;
        symmetricBlock(x, xo, 4, 32, y, p + 108, sc, q);
        for (let s = 0; s < 16; s++) ls[s] = sc[s]! + 32;
        packScalesQ3K(ls, y, p + 96);
        y.fill(0, p, p + 96);
        for (let i = 0; i < QK; i++) {
          const half = i >> 7;
          const plane = (i >> 5) & 3;
          const l = i & 31;
          const a = p + 32 + 32 * half + l;
          y[a] = y[a]! | ((q[i]! & 3) << (2 * plane));
          y[p + l] = y[p + l]! | ((q[i]! >> 2) << (4 * half + plane));
        }
        break;
      }
      case 'Q4_K':
      case 'Q5_K': {
        const five = dtype === 'Q5_K';
        const p = yo + b * (five ? 176 : 144);
        asymmetricBlock(x, xo, 8, 32, five ? 31 : 15, 63, y, p, ls, lm, q);
        packScaleMinK4(ls, lm, y, p + 4);
        const qs = p + (five ? 48 : 16);
        if (five) y.fill(0, p + 16, p + 48);
        for (let c = 0; c < 4; c++) {
          for (let l = 0; l < 32; l++) {
            const lo = q[64 * c + l]!;
            const hi = q[64 * c + 32 + l]!;
            y[qs + 32 * c + l] = (lo & 15) | ((hi & 15) << 4);
            if (five) y[p + 16 + l] = y[p + 16 + l]! | ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1));
          }
        }
        break;
      }
      case 'Q6_K': {
        const p = yo + b * 210;
        symmetricBlock(x, xo, 32, 128, y, p + 208, sc, q);
        for (let s = 0; s < 16; s++) y[p + 192 + s] = sc[s]! & 0xff;
        y.fill(0, p, p + 192);
        for (let i = 0; i < QK; i++) {
          const half = i >> 7;
          const quarter = (i >> 5) & 3;
          const l = i & 31;
          const a = p + 64 * half + 32 * (quarter & 1) + l;
          const h = p + 128 + 32 * half + l;
          y[a] = y[a]! | ((q[i]! & 15) << (quarter < 2 ? 0 : 4));
          y[h] = y[h]! | ((q[i]! >> 4) << (2 * quarter));
        }
        break;
      }
    }
  }
}
