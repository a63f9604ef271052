# Build of the native CPU backend (native/, loaded by src/backend/native.ts).
# Baseline C for every CPU, plus per-ISA static libraries compiled with their own flags
# (AVX2+FMA+F16C, AVX-512F, AVX-512 VNNI+VL) on x86-64 and NEON sources on arm64; native/dispatch.c picks at load.
# Only libc and pthreads are linked. Build: npm run build:native (node-gyp rebuild).
{
  'target_defaults': {
    'cflags': ['-std=gnu11', '-O3', '-Wno-unused-function'],
    'xcode_settings': { 'OTHER_CFLAGS': ['-std=gnu11', '-O3'] },
  },
  'targets': [
    {
      'target_name': 'llama2_native',
      'sources': [
        'native/addon.c', 'native/pool.c', 'native/dispatch.c', 'native/gemm.c', 'native/matmul.c',
        'native/ops.c', 'native/attention.c', 'native/quant_decode.c', 'native/quant_dot.c',
        'native/engine.c', 'native/addon_engine.c', 'native/addon_mmap.c',
        'native/kernels_scalar.c', 'native/repack.c', 'native/sample.c',
        'native/train_ops.c', 'native/train_attn.c', 'native/addon_train.c',
      ],
      'libraries': ['-lm', '-lpthread'],
      'conditions': [
        ['target_arch=="x64"', { 'dependencies': ['llama2_avx2', 'llama2_avx512', 'llama2_avx512vnni', 'llama2_train_avx2'] }],
        ['target_arch=="arm64"', { 'sources': ['native/kernels_neon.c'] }],
      ],
    },
  ],
  'conditions': [
    ['target_arch=="x64"', {
      'targets': [
        {
          'target_name': 'llama2_avx2',
          'type': 'static_library',
          'sources': ['native/kernels_avx2.c', 'native/quant_dot_avx2.c', 'native/quant_decode_avx2.c', 'native/quant_mm_avx2.c'],
          'cflags': ['-fPIC', '-mavx2', '-mfma', '-mf16c'],
          'xcode_settings': { 'OTHER_CFLAGS': ['-mavx2', '-mfma', '-mf16c'] },
        },
        {
          'target_name': 'llama2_train_avx2',
          'type': 'static_library',
          'sources': ['native/train_avx2.c'],
          'cflags': ['-fPIC', '-mavx2', '-mfma', '-mf16c', '-ffp-contract=off'],
          'xcode_settings': { 'OTHER_CFLAGS': ['-mavx2', '-mfma', '-mf16c', '-ffp-contract=off'] },
        },
        {
          'target_name': 'llama2_avx512vnni',
          'type': 'static_library',
          'sources': ['native/quant_vnni.c'],
          'cflags': ['-fPIC', '-mavx512vnni', '-mavx512vl', '-mavx512f', '-mavx2', '-mfma', '-mf16c'],
          'xcode_settings': { 'OTHER_CFLAGS': ['-mavx512vnni', '-mavx512vl', '-mavx512f', '-mavx2', '-mfma', '-mf16c'] },
        },
        {
          'target_name': 'llama2_avx512',
          'type': 'static_library',
          'sources': ['native/kernels_avx512.c'],
          'cflags': ['-fPIC', '-mavx512f', '-mavx2', '-mfma', '-mf16c'],
          'xcode_settings': { 'OTHER_CFLAGS': ['-mavx512f', '-mavx2', '-mfma', '-mf16c'] },
        },
      ],
    }],
  ],
}
