/** Small helpers shared by the benchmark scripts (not part of the package). */

/** n uniform values in [−0.5, 0.5) from a 32-bit LCG: the same data on every run and machine */
export function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296 - 0.5;
  }
  return out;
}

/**
 * The flags of a bench section run as its own script (`node dist/bench/<section>.js …`):
 * --quick, --json, --threads=1,2, --models=a,b, --no-llama-cpp, and `--<baselineFlag>=PATH` for
 * the llama.cpp binary (llamaCpp: its path, else true unless --no-llama-cpp).
 */
export function sectionArgs(argv: string[], defaultThreads: string, baselineFlag: string): {
  quick: boolean; json: boolean; threads: number[]; models?: string[]; llamaCpp: boolean | string;
} {
  const value = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  return {
    quick: argv.includes('--quick'),
    json: argv.includes('--json'),
    threads: (value('threads') ?? defaultThreads).split(',').map(Number),
    models: value('models')?.split(',').filter(Boolean),
    llamaCpp: value(baselineFlag) ?? !argv.includes('--no-llama-cpp'),
  };
}
