/**
 * Loads an oracle case (tests/fixtures/oracle/<case>) for inference tests: config, Meta-layout
 * weights, inputs and expected outputs. Metrics follow ../shared/oracle/check_candidate.md.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeConfig, type LlamaConfig } from '../../src/model/config.js';
import { assembleWeights, type ModelWeights } from '../../src/model/weights.js';
import { SafetensorsFile } from '../../src/formats/safetensors.js';

export const CASES = ['a_tiny_mha', 'b_gqa', 'c_odd_ffn', 'd_stories260k', 'e_tok2k_chat'] as const;

/** Locates tests/fixtures/oracle whether running from tests/ (tsx) or dist/tests/ (compiled). */
export function oracleDir(): string {
  const here = new URL('.', import.meta.url).pathname;
  const root = here.includes('/dist/') ? here.slice(0, here.indexOf('/dist/')) : here.replace(/\/tests\/helpers\/$/, '');
  return join(root, 'tests', 'fixtures', 'oracle');
}

export interface OracleCase {
  name: string;
  dir: string;
  config: LlamaConfig;
  json: Record<string, unknown>;
  inputs: SafetensorsFile;
  expected: SafetensorsFile;
}

export function loadCase(name: string): OracleCase {
  const dir = join(oracleDir(), name);
  const json = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as Record<string, unknown>;
  const cfg = json['config'] as Record<string, number | null>;
  const config = makeConfig({
    dim: cfg['dim']!, n_layers: cfg['n_layers']!, n_heads: cfg['n_heads']!,
    n_kv_heads: cfg['n_kv_heads'] ?? cfg['n_heads']!, vocab_size: cfg['vocab_size']!,
    multiple_of: cfg['multiple_of']!, ffn_dim_multiplier: cfg['ffn_dim_multiplier'] ?? null,
    norm_eps: cfg['norm_eps']!, rope_theta: cfg['rope_theta']!, max_seq_len: cfg['max_seq_len']!,
  });
  return {
    name, dir, config, json,
    inputs: new SafetensorsFile(join(dir, 'inputs.safetensors')),
    expected: new SafetensorsFile(join(dir, 'expected.safetensors')),
  };
}

/** Meta-layout weights straight from meta/consolidated.safetensors. */
export function metaWeights(oc: OracleCase): ModelWeights {
  const st = new SafetensorsFile(join(oc.dir, 'meta', 'consolidated.safetensors'));
  return assembleWeights(oc.config, (n) => (st.has(n) ? st.weight(n) : undefined), st.path);
}

/** max |a − b| / max(floor, max |b|) over the given index range (check_candidate.md's metric). */
export function relMaxErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1): { metric: number; maxAbs: number; at: number } {
  let maxAbs = 0;
  let ref = 0;
  let at = -1;
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= maxAbs)) { maxAbs = d; at = i; }
    ref = Math.max(ref, Math.abs(b[i]!));
  }
  return { metric: maxAbs / Math.max(floor, ref), maxAbs, at };
}
