/*
 * quant_decode.c compiled with AVX2 + FMA + F16C flags (its loops auto-vectorise wider); the
 * function is dequant_row_avx2 in the AVX2 kernel table. No code of its own.
 */
#define DEQUANT_ROW_FN dequant_row_avx2
#include "quant_decode.c"
