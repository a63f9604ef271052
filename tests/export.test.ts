/**
 * `llama2 export` (formats/export.ts, cli/export.ts): every format × every dtype it holds reloads
 * as the source converted by the plain converters (tensor bytes identical, logits bit-identical to
 * the converted source's, tokenizer identical), extra heads follow each format's policy, the HF
 * directory carries the tokenizer and chat-template files, outputs are atomic and never clobbered
 * by accident, and user mistakes are one-line errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, runCli } from './helpers/cli.js';
import { loadModelFile } from '../src/formats/load.js';
import { EXPORT_FORMATS, FORMAT_DTYPES, LLAMA2_CHAT_TEMPLATE, exportModel, parseExportDType, type ExportDType } from '../src/formats/export.js';
import { fallbackDType } from '../src/formats/gguf-writer.js';
import { openGguf } from '../src/formats/gguf.js';
import { convertWeight } from '../src/formats/hf.js';
import { quantizeTensor } from '../src/formats/quants.js';
import { mapWeights, namedHeads, namedWeights, type ModelWeights } from '../src/model/weights.js';
import { Model } from '../src/model/forward.js';
import { refBackend } from '../src/backend/ref.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { readTokenizerJson } from '../src/tokenizer/load.js';
import { f32Tensor, toFloat32, type DType, type WeightTensor } from '../src/tensor.js';
import type { LoadedModel } from '../src/formats/types.js';
import { Llama2Error } from '../src/util/errors.js';
import { scoreLlamaCpp } from '../src/cli/perplexity.js';

const dir = mkdtempSync(join(tmpdir(), 'llama2-export-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const TOKENIZER = fixture('oracle', 'tokenizer', 'tokenizer.model');
const src = loadModelFile(fixture('oracle', 'e_tok2k_chat', 'hf'), { tokenizer: TOKENIZER, mmap: false });
const ids = new Tokenizer(src.vocab!).encode('Hello! How are you today? 42 cats.', { bos: true });
const UPPER: Readonly<Record<ExportDType, DType>> = { f32: 'F32', f16: 'F16', bf16: 'BF16', q8_0: 'Q8_0', q4_0: 'Q4_0', q4_k: 'Q4_K' };

function logits(config: LoadedModel['config'], w: ModelWeights): Float32Array {
  const m = new Model(config, w, refBackend);
  return m.step(ids, m.newCache(ids.length), 'all'); // (T, V)
}

/** What a tensor becomes in `format` at `dtype` by the plain converters (norms stay F32 in GGUF and llama2.c). */
function reference(t: WeightTensor, format: string, dtype: ExportDType): WeightTensor {
  if (format === 'gguf' || format === 'llama2c') {
    const want = t.shape.length === 1 ? 'F32' : fallbackDType(UPPER[dtype], t.shape[t.shape.length - 1]!);
    return want === t.dtype ? t : quantizeTensor(want, toFloat32(t), t.shape);
  }
  return convertWeight(t, UPPER[dtype] as 'F32' | 'F16' | 'BF16');
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const REF_LOGITS = logits(src.config, src.weights);
const MAX_LOGIT = REF_LOGITS.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
/**
 * Converted logits stay within this share of max|logit| (13.7 on this random-weight model) of the
 * f32 ones: a sanity bound that a misplaced row or block breaks, not a precision claim (measured:
 * f16 0.07%, bf16 0.5%, q8_0 1.8%, q4_k 11%, q4_0 26%).
 */
const LOGIT_REL_TOL: Readonly<Record<ExportDType, number>> = { f32: 0, f16: 0.005, bf16: 0.02, q8_0: 0.05, q4_0: 0.4, q4_k: 0.4 };

for (const format of EXPORT_FORMATS) {
  test(`${format}: every dtype it holds reloads as the source converted to it`, () => {
    for (const dtype of FORMAT_DTYPES[format]) {
      const out = join(dir, `m-${format}-${dtype}${format === 'gguf' ? '.gguf' : ''}`);
      const where = `${format} ${dtype}`;
      const s = exportModel(src, { to: format, out: format === 'llama2c' ? join(dir, `l2c-${dtype}`, 'model.bin') : out, dtype });
      const back = loadModelFile(format === 'llama2c' ? s.files[0]! : out, { mmap: false });
      assert.equal(back.format, format, where);
      const want = new Map([...namedWeights(src.weights)].map(([n, t]) => [n, reference(t, format, dtype)] as const));
      const got = new Map(namedWeights(back.weights));
      assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), `${where}: tensor names`);
      const types: Record<string, number> = {};
      for (const [name, t] of want) {
        const u = got.get(name)!;
        assert.equal(u.dtype, t.dtype, `${where}: ${name} dtype`);
        assert.ok(Buffer.from(u.data).equals(Buffer.from(t.data)), `${where}: ${name} bytes differ from the plain conversion`);
        types[t.dtype] = (types[t.dtype] ?? 0) + 1;
      }
      assert.deepEqual(s.tensor_types, types, `${where}: summary tensor_types`);
      assert.deepEqual(back.vocab!.pieces, src.vocab!.pieces, `${where}: tokenizer pieces`);
      assert.deepEqual(back.vocab!.scores, src.vocab!.scores, `${where}: tokenizer scores`);
      assert.deepEqual(new Tokenizer(back.vocab!).encode('Hello! How are you today? 42 cats.', { bos: true }), ids, `${where}: encoding`);
      const l = logits(back.config, back.weights);
      if (dtype === 'f32') assert.deepEqual(l, REF_LOGITS, `${where}: logits`);
      else {
        const convertedSrc = logits(src.config, mapWeights(src.weights, (t) => reference(t, format, dtype)));
        assert.deepEqual(l, convertedSrc, `${where}: logits differ from the converted source's`);
        const d = maxAbsDiff(l, REF_LOGITS);
        assert.ok(d < LOGIT_REL_TOL[dtype] * MAX_LOGIT, `${where}: logits ${d} away from f32 (max |logit| ${MAX_LOGIT})`);
      }
      assert.ok(!readdirSync(dir).some((n) => /\.(tmp|old)-\d+$/.test(n)), `${where}: temp files left behind`);
    }
  });
}

test('hf: tokenizer.model, tokenizer.json and the transformers side files (chat template, special tokens)', () => {
  const out = join(dir, 'hf-tok');
  const s = exportModel(src, { to: 'hf', out });
  for (const n of ['config.json', 'model.safetensors', 'tokenizer.model', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']) {
    assert.ok(existsSync(join(out, n)), `missing ${n}`);
  }
  assert.deepEqual(s.tokenizer, { pieces: 2000, files: ['tokenizer.model', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json'] });
  assert.deepEqual(readTokenizerJson(join(out, 'tokenizer.json')).pieces, src.vocab!.pieces);
  const tc = JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(tc['bos_token'], src.vocab!.pieces[src.vocab!.bosId]);
  assert.equal(tc['eos_token'], src.vocab!.pieces[src.vocab!.eosId]);
  assert.equal(tc['tokenizer_class'], 'LlamaTokenizer');
  for (const part of ["'[INST] '", "' [/INST]'", '<<SYS>>', '<</SYS>>', 'bos_token', 'eos_token']) assert.ok(String(tc['chat_template']).includes(part), `chat_template lacks ${part}`);
  const gen = JSON.parse(readFileSync(join(out, 'generation_config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(gen['eos_token_id'], src.vocab!.eosId);
});

const C = src.config.dim;
const heads: Record<string, WeightTensor> = {
  'score.weight': f32Tensor(Float32Array.from({ length: C }, (_, i) => Math.sin(i) / 8), [1, C]),
  'v_head.summary.weight': f32Tensor(Float32Array.from({ length: C }, (_, i) => Math.cos(i) / 8), [1, C]),
  'v_head.summary.bias': f32Tensor(Float32Array.of(0.25), [1]),
};
const withHeads: LoadedModel = { ...src, weights: { ...src.weights, heads } };

test('heads: dropped from gguf with a note unless keepHeads, kept by hf and meta, dropped from llama2c with a note', () => {
  const g = exportModel(withHeads, { to: 'gguf', out: join(dir, 'h.gguf') });
  assert.deepEqual(g.heads, { kept: [], dropped: Object.keys(heads) });
  assert.match(g.notes.join('\n'), /left out the heads score\.weight, v_head\.summary\.weight, v_head\.summary\.bias: llama\.cpp refuses/);
  const gf = openGguf(join(dir, 'h.gguf'));
  assert.equal(gf.metadata.get('tokenizer.chat_template')?.value, LLAMA2_CHAT_TEMPLATE, 'gguf: chat template embedded');
  assert.ok(![...gf.tensors.keys()].some((n) => n.startsWith('cls.') || n.startsWith('v_head.')), 'gguf: no head tensors');
  gf.close();

  const k = exportModel(withHeads, { to: 'gguf', out: join(dir, 'hk.gguf'), keepHeads: true });
  assert.deepEqual(k.heads.kept, Object.keys(heads));
  assert.match(k.notes.join('\n'), /llama\.cpp will refuse/);
  assert.deepEqual([...namedHeads(loadModelFile(join(dir, 'hk.gguf')).weights)].map(([n]) => n), Object.keys(heads));

  for (const to of ['hf', 'meta'] as const) {
    const s = exportModel(withHeads, { to, out: join(dir, `h-${to}`) });
    assert.deepEqual(s.heads.kept, Object.keys(heads), to);
    const back = new Map(namedHeads(loadModelFile(join(dir, `h-${to}`)).weights));
    for (const [n, t] of Object.entries(heads)) assert.ok(Buffer.from(back.get(n)!.data).equals(Buffer.from(t.data)), `${to}: ${n}`);
  }
  const cfg = JSON.parse(readFileSync(join(dir, 'h-hf', 'config.json'), 'utf8')) as { architectures: string[] };
  assert.deepEqual(cfg.architectures, ['LlamaForSequenceClassification']);

  const l = exportModel(withHeads, { to: 'llama2c', out: join(dir, 'h-l2c', 'model.bin') });
  assert.deepEqual(l.heads.dropped, Object.keys(heads));
  assert.match(l.notes.join('\n'), /a llama2\.c file has no place for them/);
  assert.equal([...namedHeads(loadModelFile(join(dir, 'h-l2c', 'model.bin')).weights)].length, 0);
});

test('mistakes: existing output, dtype the format cannot hold, unknown dtype, exporting onto the source, file vs directory', () => {
  const out = join(dir, 'exists.gguf');
  writeFileSync(out, 'x');
  assert.throws(() => exportModel(src, { to: 'gguf', out }), (e: unknown) => e instanceof Llama2Error && /exists\.gguf: already exists; pass --overwrite/.test(e.message));
  assert.equal(readFileSync(out, 'utf8'), 'x', 'untouched');
  assert.throws(() => parseExportDType('q4_0', 'hf'), /--dtype q4_0: hf files hold f32, f16, bf16; use --to gguf/);
  assert.throws(() => parseExportDType('f16', 'llama2c'), /--dtype f16: llama2c files hold f32/);
  assert.throws(() => parseExportDType('q5_k', 'gguf'), /--dtype: expected one of f32, f16, bf16, q8_0, q4_0, q4_k, found "q5_k"/);
  assert.throws(() => exportModel(src, { to: 'hf', out: src.path, overwrite: true }), /that is the model being exported/);
  assert.throws(() => exportModel(src, { to: 'hf', out, overwrite: true }), /is a file but --to hf writes a directory/);
  assert.throws(() => exportModel(src, { to: 'hf', out: join(src.path, '..'), overwrite: true }), /it holds the model being exported/);
  const l2c = join(dir, 'l2c-tok');
  mkdirSync(l2c);
  writeFileSync(join(l2c, 'tokenizer.bin'), 'mine');
  assert.throws(() => exportModel(src, { to: 'llama2c', out: join(l2c, 'm.bin') }), /tokenizer\.bin \(where its tokenizer goes\) already exists/);
  assert.ok(!existsSync(join(l2c, 'm.bin')), 'nothing written');
});

test('overwrite replaces a directory whole: stale files go, no temp directories stay', () => {
  const out = join(dir, 'ow');
  mkdirSync(out);
  writeFileSync(join(out, 'stale.bin'), 'old');
  exportModel(src, { to: 'meta', out, overwrite: true });
  assert.deepEqual(readdirSync(out).sort(), ['consolidated.safetensors', 'params.json', 'tokenizer.model']);
  assert.ok(!readdirSync(dir).some((n) => n.startsWith('ow.')), 'no ow.tmp-* / ow.old-* left');
});

test('CLI: a training run directory stands for its latest checkpoint; --json summary; errors are one line', () => {
  const run = join(dir, 'run');
  mkdirSync(run);
  exportModel(src, { to: 'hf', out: join(run, 'ckpt-000007') });
  writeFileSync(join(run, 'latest.json'), JSON.stringify({ checkpoint: 'ckpt-000007', step: 7 }));
  const out = join(dir, 'cli.gguf');
  const r = runCli(['export', '--model', run, '--to', 'gguf', '--out', out, '--dtype', 'q8_0', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { model: string; format: string; files: string[]; tensor_types: Record<string, number>; tokenizer: { pieces: number } };
  assert.equal(j.model, join(run, 'ckpt-000007'));
  assert.equal(j.format, 'gguf');
  assert.deepEqual(j.files, [out]);
  assert.equal(j.tokenizer.pieces, 2000);
  assert.ok((j.tensor_types['Q8_0'] ?? 0) > 0 && j.tensor_types['F32'] === 2 * src.config.n_layers + 1, JSON.stringify(j.tensor_types));

  const again = runCli(['export', '--model', run, '--to', 'gguf', '--out', out]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /^error: --out .*cli\.gguf: already exists; pass --overwrite to replace it\n$/);
  const bad = runCli(['export', '--model', run, '--to', 'onnx', '--out', out]);
  assert.match(bad.stderr, /^error: --to: expected one of gguf, hf, meta, llama2c, found "onnx"\n$/);
  const missing = runCli(['export', '--model', run, '--out', out]);
  assert.match(missing.stderr, /^error: export: --to is required/);
});

test("perplexity --protocol llama.cpp: llama-perplexity's windows (BOS in front, second half scored) against a plain loop", () => {
  const tok = new Tokenizer(src.vocab!);
  const text = 'The cat sat on the mat. It was warm, and the dog slept by the door while 42 birds sang. '.repeat(6);
  const all = tok.encode(text, { bos: true });
  const ctx = 48;
  const model = new Model(src.config, src.weights, refBackend);
  let nll = 0;
  let count = 0;
  const V = src.config.vocab_size;
  for (let c = 0; c + ctx <= all.length; c += ctx) {
    const win = [tok.bosId, ...all.slice(c + 1, c + ctx)];
    const lg = model.step(win, model.newCache(ctx), 'all'); // (ctx, V)
    for (let j = ctx / 2; j <= ctx - 2; j++) {
      const row = Array.from(lg.subarray(j * V, (j + 1) * V));
      const m = Math.max(...row);
      nll += m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0)) - row[win[j + 1]!]!;
      count++;
    }
  }
  const r = scoreLlamaCpp(model, tok.bosId, all, ctx);
  assert.equal(r.tokens, Math.floor(all.length / ctx) * (ctx / 2 - 1));
  assert.equal(r.tokens, count);
  assert.ok(Math.abs(r.nll - nll) < 1e-6 * count, `nll ${r.nll} vs ${nll}`);
  assert.throws(() => scoreLlamaCpp(model, tok.bosId, all.slice(0, 2 * ctx - 1), ctx), /needs at least 2 × --ctx = 96/);
});
