/*
 * Shared declarations of the native CPU backend: dtype codes, the activation block format, the
 * per-ISA kernel table, and small scalar helpers (f16/bf16 conversion, unaligned loads).
 *
 * It is not an implementation of anything by itself: the kernels live in one file per concern
 * (gemm.c, matmul.c, quant_*.c, ops.c, attention.c) and the per-ISA fast paths in *_avx2.c,
 * *_avx512.c, *_neon.c. Every helper here is `static inline`, because this header is included by
 * translation units compiled with different ISA flags and must never share an out-of-line symbol.
 *
 * Legend: T = rows (tokens), K = in features, N = out features, QK = 32 values per activation block.
 */
#ifndef LLAMA2_NATIVE_COMMON_H
#define LLAMA2_NATIVE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * dtype codes: the order of src/backend/native.ts DTYPE_CODE (and of DType in src/tensor.ts), then
 * layouts that exist only inside the addon (codes ≥ DT_PUBLIC_COUNT, never accepted from JS):
 *   DT_Q4_0X8  Q4_0 rows regrouped by eight (repack.c): for rows 8g..8g+7, block b is 144 bytes,
 *              the 8 rows' f16 scales, then 4 chunks of 32 bytes where chunk c holds bytes
 *              4c..4c+3 of each row's 16 nibble bytes (row r at 4r). Same bytes per 8 rows as
 *              Q4_0, so row ranges that are multiples of 8 keep their byte offsets.
 *   DT_Q8_0X8  Q8_0 likewise: block b of rows 8g..8g+7 is 272 bytes, the 8 f16 scales, then 8
 *              chunks of 32 bytes, chunk c holding int8 values 4c..4c+3 of each row (row r at 4r).
 *   DT_Q4_KX8  Q4_K likewise, with the 6-bit scales unpacked: super-block s of rows 8g..8g+7 is
 *              1184 bytes (148 per row instead of 144): the 8 rows' f16 d, their f16 dmin, scales
 *              (byte 8j + r = scale of sub-block j of row r), mins (same order), then for each
 *              pair m of sub-blocks 8 chunks of 32 bytes, chunk c holding bytes 32m+4c..32m+4c+3
 *              of each row's 128 nibble bytes (low nibbles: sub-block 2m, high: 2m+1).
 */
enum {
  DT_F32 = 0, DT_F16, DT_BF16,
  DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1, DT_Q8_0,
  DT_Q2_K, DT_Q3_K, DT_Q4_K, DT_Q5_K, DT_Q6_K,
  DT_PUBLIC_COUNT,
  DT_Q4_0X8 = DT_PUBLIC_COUNT,
  DT_Q8_0X8,
  DT_Q4_KX8,
  DT_COUNT
};

/* values and bytes per block of each dtype (ggml's layouts; see src/tensor.ts DTYPE_LAYOUT);
 * the X8 layouts as bytes per row (the row's share of its group of eight) */
static const int DT_BLOCK[DT_COUNT] = { 1, 1, 1, 32, 32, 32, 32, 32, 256, 256, 256, 256, 256, 32, 32, 256 };
static const int DT_BYTES[DT_COUNT] = { 4, 2, 2, 18, 20, 22, 24, 34, 84, 110, 144, 176, 210, 18, 34, 148 };

/* bytes of n values of dtype dt (n a whole number of blocks) */
static inline size_t dt_row_bytes(int dt, long n) { return (size_t)(n / DT_BLOCK[dt]) * (size_t)DT_BYTES[dt]; }

/*
 * One block of 32 activations quantized to int8 (the "Q8 activation" format of the integer dot
 * products): x[i] ≈ d · qs[i]. Spec (mirrored by src/backend/q8act.ts, which the tests compare to):
 *   amax = max |x[i]|;  d = amax / 127 (f32);  id = d ? 1/d : 0 (f32);
 *   qs[i] = round-half-even(x[i] · id) (f32 product);  sum = Σ qs[i].
 */
#define QK 32
typedef struct {
  float d;
  int32_t sum;
  int8_t qs[QK];
} q8a_block;

/* which dtypes have an integer dot product against q8a activations */
static inline int dt_has_q8_dot(int dt) { return dt >= DT_Q4_0 && dt < DT_COUNT; }

/* one weight row (K values of its dtype) · one quantized activation row (K/32 blocks) */
typedef float (*q8_dot_fn)(int K, const uint8_t *w, const q8a_block *xa);

/*
 * T rows of quantized activations as the multi-row kernels read them: the q8a blocks, and per
 * block two f32 side values in their own arrays (so kernels can load 8 blocks' worth at once):
 * d[i] = xa[i].d and nsd[i] = −xa[i].sum · xa[i].d. Row t starts at block t·nb.
 */
typedef struct {
  const q8a_block *xa; /* (T, nb) */
  const float *d;      /* (T, nb) */
  const float *nsd;    /* (T, nb) */
  int nb;              /* blocks per row: K/32 */
} q8a_rows;

/*
 * y[t·ldy + r] (+)= weight row r · activation row t, for r < R rows of w (rb bytes apart) and
 * t < T rows of x; acc: add into y instead of overwriting it. Same value as q8_dot up to the
 * f32 summation order.
 */
typedef void (*q8_rows_fn)(int K, const uint8_t *w, size_t rb, int R, const q8a_rows *x, int T, float *y,
                           long ldy, int acc);

/*
 * The kernels one ISA level provides. A level starts from the scalar table and overrides the
 * entries it accelerates (kernels_scalar / kernels_avx2 / kernels_avx512 / kernels_neon).
 */
typedef struct {
  const char *name;
  int mr, nr; /* GEMM micro-tile: MR rows of A × NR columns of B */
  /* C (MR, NR) (+)= Ap (kc, MR)ᵀ-packed · Bp (kc, NR)-packed; acc: add into C instead of overwrite */
  void (*gemm_tile)(int kc, const float *ap, const float *bp, float *c, long ldc, int acc);
  float (*dot_f32)(int n, const float *a, const float *b);
  float (*dot_f16)(int n, const uint8_t *w, const float *x);      /* w: n raw f16 values */
  float (*dot_bf16)(int n, const uint8_t *w, const float *x);     /* w: n raw bf16 values */
  /* out[r] = row r · x for four rows of one float dtype (DT_F32 / DT_F16 / DT_BF16), rb bytes
   * apart: x is loaded once for the four rows. NULL where the table has none (matmul then calls
   * the one-row dots) */
  void (*dot4)(int dt, int n, const uint8_t *w, size_t rb, const float *x, float *out);
  void (*f16_to_f32)(int n, const uint8_t *src, float *dst);
  /* GEMM packing of NR rows of one float dtype (DT_F32 / DT_F16 / DT_BF16), rs bytes apart, kc
   * values each, into dst[k·NR + j] (k-major, as f32). NULL where the table has none */
  void (*pack_nt)(int dt, const uint8_t *src, long rs, int kc, int NR, float *dst);
  void (*dequant_row)(int dt, const uint8_t *src, long n, float *dst); /* n values of dtype dt → f32 */
  void (*quantize_q8a)(int K, const float *x, q8a_block *out);   /* K a multiple of 32 */
  q8_dot_fn q8_dot[DT_COUNT];                                     /* NULL where no int dot */
  /* one query row of one head: out (hs) = softmax_s(scale · q·k_s) · v_s for s < n, where
   * k_s = k + s·stride (v likewise); scores (n) is scratch */
  void (*attend_head)(int n, int hs, const float *q, const float *k, const float *v, long stride,
                      float scale, float *scores, float *out);
  void (*silu_mul)(int n, float *g, const float *u);              /* g = silu(g) · u */
  float (*exp_shift_sum)(int n, float *x, float shift);           /* x = exp(x − shift); returns Σ x */
  void (*add_f32)(int n, float *x, const float *y);               /* x += y */
  /* several weight rows × several activation rows at once (see q8_rows_fn); NULL where the
   * table has none (matmul then calls q8_dot per row and token) */
  q8_rows_fn q8_rows[DT_COUNT];
} kernels_t;

/* ISA levels, lowest first */
typedef enum { ISA_SCALAR = 0, ISA_AVX2, ISA_AVX512, ISA_NEON, ISA_COUNT } isa_t;

void kernels_scalar(kernels_t *k);
#if defined(__x86_64__) || defined(_M_X64)
void kernels_avx2(kernels_t *k);   /* also needs FMA and F16C */
void kernels_avx512(kernels_t *k); /* AVX-512F on top of the AVX2 table */
#endif
#if defined(__aarch64__)
void kernels_neon(kernels_t *k);
#endif

/* the table in use (dispatch.c) */
extern const kernels_t *K_ACTIVE;

/* ---------------------------------------------------------------------------------------------
 * scalar helpers */

static inline uint16_t ld_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t ld_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline float ld_f32(const uint8_t *p) { float v; memcpy(&v, p, 4); return v; }

/* IEEE half bits → float (exact; handles subnormals, inf, nan) */
static inline float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else { /* subnormal: renormalise */
      int e = -1;
      do { e++; mant <<= 1; } while (!(mant & 0x400));
      bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000 | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static inline float bf16_to_f32(uint16_t b) {
  uint32_t bits = (uint32_t)b << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static inline float ld_f16(const uint8_t *p) { return f16_to_f32(ld_u16(p)); }

#endif
