/** LlamaConfig: Meta's FFN size rule, presets of the released models, and config validation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { oracleDir } from './helpers/oracle-case.js';
import { PRESETS, ffnHiddenDim, ffnHiddenDimRule, makeConfig, paramCount, preset, validateConfig } from '../src/model/config.js';
import { Llama2Error } from '../src/util/errors.js';

test('FFN hidden size follows Meta\'s rule (oracle units table)', () => {
  const units = JSON.parse(readFileSync(join(oracleDir(), 'units', 'units.json'), 'utf8')) as {
    ffn_hidden_dim: { name: string; dim: number; multiple_of: number; ffn_dim_multiplier: number | null; hidden_dim: number }[];
  };
  assert.ok(units.ffn_hidden_dim.length >= 8);
  for (const r of units.ffn_hidden_dim) {
    assert.equal(ffnHiddenDimRule(r.dim, r.multiple_of, r.ffn_dim_multiplier), r.hidden_dim, r.name);
  }
});

test('presets: released sizes and llama2.c shapes', () => {
  const want: Record<string, { hidden: number; params: number; tied?: boolean }> = {
    'llama2-7b': { hidden: 11008, params: 6.738e9 },
    'llama2-13b': { hidden: 13824, params: 13.016e9 },
    'llama2-70b': { hidden: 28672, params: 68.977e9 },
    'tinyllama-1.1b': { hidden: 5632, params: 1.100e9 },
    'stories15m': { hidden: 768, params: 15.19e6, tied: true },
    'stories42m': { hidden: 1376, params: 41.7e6, tied: true },
    'stories110m': { hidden: 2048, params: 109.5e6, tied: true },
    'stories260k': { hidden: 172, params: 0.26e6, tied: true },
  };
  for (const [name, w] of Object.entries(want)) {
    const c = preset(name);
    assert.equal(ffnHiddenDim(c), w.hidden, `${name} FFN`);
    const p = paramCount(c, w.tied);
    assert.ok(Math.abs(p - w.params) / w.params < 0.01, `${name}: ${p} parameters, expected ≈ ${w.params}`);
  }
  assert.equal(preset('llama2-70b').n_kv_heads, 8);
  assert.ok(Object.keys(PRESETS).includes('llama2-7b-chat'));
  assert.throws(() => preset('llama2-8b'), (e: unknown) => e instanceof Llama2Error && /unknown model preset "llama2-8b"/.test(e.message));
});

test('invalid configs name the field', () => {
  const ok = makeConfig({ dim: 64, n_layers: 2, n_heads: 4, vocab_size: 100 });
  const bad: [Partial<typeof ok>, RegExp][] = [
    [{ dim: 0 }, /"dim" must be a positive integer/],
    [{ n_heads: 3 }, /dim 64 is not divisible by n_heads 3/],
    [{ n_kv_heads: 3 }, /n_heads 4 is not a multiple of n_kv_heads 3/],
    [{ norm_eps: 0 }, /"norm_eps" must be > 0/],
    [{ rope_theta: -1 }, /"rope_theta"/],
    [{ norm_eps: Infinity }, /"norm_eps" must be > 0 and finite, found Infinity/],
    [{ norm_eps: NaN }, /"norm_eps" must be > 0 and finite, found NaN/],
    [{ rope_theta: Infinity }, /"rope_theta" must be > 0 and finite, found Infinity/],
    [{ ffn_dim_multiplier: Infinity }, /"ffn_dim_multiplier"/],
    [{ n_heads: 64 }, /head size 1 must be even/],
  ];
  for (const [patch, re] of bad) {
    assert.throws(() => validateConfig({ ...ok, ...patch }, 'params.json'), (e: unknown) => e instanceof Llama2Error && re.test(e.message) && e.message.startsWith('params.json'));
  }
});
