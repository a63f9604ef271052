/**
 * Compute accounting of a training run: FLOPs, model-FLOPs utilisation, energy and CO2.
 *
 * FLOPs per training token (as /work/shared/oracle/BASELINE.md defines them, after PaLM appendix
 * B and llama2.c's estimate_mfu):  6·N_matmul + 12·L·d·T
 *   N_matmul = every weight used in a matmul: the attention and FFN projections of every layer
 *   plus the output head (V·d, also when it is tied to the embedding); the input embedding is a
 *   lookup and does not count. 12·L·d·T is attention over the full T×T score matrix.
 *
 * MFU = achieved FLOP/s ÷ a declared peak. Default peak: 90 GFLOP/s per thread, the fp32 GEMM rate
 * PyTorch/OpenBLAS reaches on one core of the 2-vCPU AVX-512 EPYC reference machine (BASELINE.md,
 * "Hardware reference": 86–90 GFLOP/s); pass `peak_gflops` for other hardware.
 *
 * Energy = hours × watts / 1000 (kWh), charging the device's rated power for the whole wall time,
 * as the Llama 2 paper does for its GPUs (Table 2 uses each GPU's peak power). Default CPU power:
 * 10 W per thread, a round figure for the TDP share of one core: about 3.5 W per core on a
 * 64-core 225 W server part (AMD EPYC 7B13) up to ~15 W per core on a 125 W 8-core desktop part.
 * CO2 = kWh × 0.4235 kgCO2eq/kWh (the carbon intensity the Llama 2 paper's Table 2 implies).
 *
 * What it is not: a power meter. These are estimates from declared figures, labelled as such.
 */
import { ffnHiddenDim, headDim, type LlamaConfig } from '../model/config.js';
import { DEFAULT_PEAK_GFLOPS_PER_THREAD, DEFAULT_WATTS_PER_THREAD } from './config.js';

/** Weights used in matmuls (see the header): per layer wq, wk, wv, wo, w1, w2, w3, plus the head. */
export function matmulParams(c: LlamaConfig): number {
  const kv = c.n_kv_heads * headDim(c);
  const H = ffnHiddenDim(c);
  const perLayer = 2 * c.dim * c.dim + 2 * c.dim * kv + 3 * c.dim * H;
  return c.n_layers * perLayer + c.vocab_size * c.dim;
}

/** Training FLOPs per token at context T: 6·N_matmul + 12·L·d·T. */
export function trainFlopsPerToken(c: LlamaConfig, T: number): number {
  return 6 * matmulParams(c) + 12 * c.n_layers * c.dim * T;
}

export interface ComputeInputs {
  config: LlamaConfig;
  seqLen: number;
  /** training tokens processed */
  tokens: number;
  /** seconds spent in training steps */
  trainSeconds: number;
  /** wall seconds of the whole run (steps, evaluation, checkpoints) */
  wallSeconds: number;
  threads: number;
  /** declared CPU power in W (null: default per thread) */
  cpuWatts: number | null;
  /** declared peak in GFLOP/s (null: default per thread) */
  peakGflops: number | null;
  /** kgCO2eq per kWh */
  carbonIntensity: number;
}

export interface ComputeSummary {
  n_matmul_params: number;
  flops_per_token: number;
  total_flops: number;
  achieved_gflops: number;
  peak_gflops: number;
  peak_source: string;
  mfu: number;
  cpu_watts: number;
  watts_source: string;
  energy_kwh: number;
  carbon_intensity_kg_per_kwh: number;
  co2_kg: number;
}

export function computeSummary(i: ComputeInputs): ComputeSummary {
  const fpt = trainFlopsPerToken(i.config, i.seqLen);
  const total = fpt * i.tokens;
  const achieved = i.trainSeconds > 0 ? total / i.trainSeconds / 1e9 : 0;
  const peak = i.peakGflops ?? DEFAULT_PEAK_GFLOPS_PER_THREAD * i.threads;
  const watts = i.cpuWatts ?? DEFAULT_WATTS_PER_THREAD * i.threads;
  const kwh = (i.wallSeconds / 3600) * (watts / 1000);
  return {
    n_matmul_params: matmulParams(i.config),
    flops_per_token: fpt,
    total_flops: total,
    achieved_gflops: achieved,
    peak_gflops: peak,
    peak_source: i.peakGflops === null ? `assumed ${DEFAULT_PEAK_GFLOPS_PER_THREAD} GFLOP/s per thread × ${i.threads}` : 'declared (peak_gflops)',
    mfu: achieved / peak,
    cpu_watts: watts,
    watts_source: i.cpuWatts === null ? `assumed ${DEFAULT_WATTS_PER_THREAD} W per thread × ${i.threads}` : 'declared (cpu_watts)',
    energy_kwh: kwh,
    carbon_intensity_kg_per_kwh: i.carbonIntensity,
    co2_kg: kwh * i.carbonIntensity,
  };
}

/** 1234567 → "1.23M" (k, M, G, T, P, E). */
export function siNumber(x: number, digits = 3): string {
  const units = ['', 'k', 'M', 'G', 'T', 'P', 'E'];
  let u = 0;
  let v = Math.abs(x);
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${x < 0 ? '-' : ''}${v.toPrecision(digits)}${units[u]}`;
}
