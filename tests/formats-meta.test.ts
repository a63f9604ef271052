// Meta checkpoint directories: vocab_size −1, tokenizer lookup, shard merging rules and the errors
// for broken directories (every message names the file and what was expected).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { metaShardDim, readMetaDir } from '../src/formats/meta.js';
import { Llama2Error } from '../src/util/errors.js';

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) d = dirname(d);
  return d;
}
const ROOT = repoRoot();
const ORACLE = join(ROOT, 'tests/fixtures/oracle');
const FMT = join(ROOT, 'tests/fixtures/formats');

function throwsLlama(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Llama2Error, `expected a Llama2Error, got ${String(e)}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), `error must be one line: ${e.message}`);
    return true;
  });
}

/** A temp dir holding copies of `files` from `src`; removed after `fn`. */
function withCopy(src: string, files: string[], fn: (dir: string) => void): void {
  const tmp = mkdtempSync(join(tmpdir(), 'meta-'));
  try {
    const dir = join(tmp, 'model');
    mkdirSync(dir);
    for (const f of files) copyFileSync(join(src, f), join(dir, f));
    fn(dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

test('shard split table follows fairscale: column → dim 0, row/embedding → dim 1, norms replicated', () => {
  assert.equal(metaShardDim('layers.3.attention.wq.weight'), 0);
  assert.equal(metaShardDim('layers.3.attention.wk.weight'), 0);
  assert.equal(metaShardDim('layers.3.feed_forward.w3.weight'), 0);
  assert.equal(metaShardDim('output.weight'), 0);
  assert.equal(metaShardDim('layers.0.attention.wo.weight'), 1);
  assert.equal(metaShardDim('layers.0.feed_forward.w2.weight'), 1);
  assert.equal(metaShardDim('tok_embeddings.weight'), 1);
  assert.equal(metaShardDim('layers.0.attention_norm.weight'), null);
  assert.equal(metaShardDim('norm.weight'), null);
});

test('vocab_size -1 without a tokenizer: the embedding rows give the vocabulary size', () => {
  const m = readMetaDir(join(ORACLE, 'e_tok2k_chat/meta'));
  assert.equal(m.config.vocab_size, 2000);
  assert.equal(m.vocab, null);
  assert.equal(m.vocabSource, null);
});

test('tokenizer.model one level up (as Meta ships it) is found and used', () => {
  withCopy(join(ORACLE, 'e_tok2k_chat/meta'), ['params.json', 'consolidated.safetensors'], (dir) => {
    const tok = join(dirname(dir), 'tokenizer.model');
    copyFileSync(join(ORACLE, 'tokenizer/tokenizer.model'), tok);
    const m = readMetaDir(dir);
    assert.equal(m.vocabSource, tok);
    assert.ok(m.vocab);
    assert.equal(m.vocab.pieces.length, 2000);
    assert.equal(m.config.vocab_size, 2000);
  });
});

test('max_seq_len: 4096 by default, params.json or the option may set it', () => {
  withCopy(join(ORACLE, 'b_gqa/meta'), ['params.json', 'consolidated.safetensors'], (dir) => {
    assert.equal(readMetaDir(dir).config.max_seq_len, 4096);
    assert.equal(readMetaDir(dir, { maxSeqLen: 333 }).config.max_seq_len, 333);
    const p = JSON.parse(readFileSync(join(dir, 'params.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'params.json'), JSON.stringify({ ...p, max_seq_len: 512 }));
    assert.equal(readMetaDir(dir).config.max_seq_len, 512);
  });
});

test('missing params.json and malformed JSON name the file', () => {
  withCopy(join(FMT, 'pth_a_tiny'), ['consolidated.00.pth'], (dir) => {
    throwsLlama(() => readMetaDir(dir), /Meta params\.json: cannot read .*model\/params\.json \(no such file\)/);
    writeFileSync(join(dir, 'params.json'), '{"dim": 64, "n_layers": 2,,}');
    throwsLlama(() => readMetaDir(dir), /Meta params\.json: .*model\/params\.json is not valid JSON \(.+\)/);
    writeFileSync(join(dir, 'params.json'), '{"dim": "64", "n_layers": 2, "n_heads": 4}');
    throwsLlama(() => readMetaDir(dir), /params\.json: field "dim" must be a number, found "64"/);
  });
});

test('no weights, a gap in the shard numbers, or a missing shard are inconsistent shards', () => {
  const src = join(FMT, 'pth2_b_gqa_bf16');
  withCopy(src, ['params.json'], (dir) => {
    throwsLlama(() => readMetaDir(dir), /no weights in .*: expected consolidated\.00\.pth/);
    copyFileSync(join(src, 'consolidated.00.pth'), join(dir, 'consolidated.00.pth'));
    throwsLlama(
      () => readMetaDir(dir),
      /inconsistent shards: each shard holds 48 of the 96 embedding columns, so this checkpoint has 2 shards, but 1 is present \(consolidated\.00\.pth\)/,
    );
    copyFileSync(join(src, 'consolidated.01.pth'), join(dir, 'consolidated.02.pth'));
    throwsLlama(() => readMetaDir(dir), /inconsistent shards: found consolidated\.00\.pth, consolidated\.02\.pth but no shard 01/);
  });
});

test('a tensor whose shape disagrees with params.json names the files', () => {
  withCopy(join(FMT, 'pth2_b_gqa_bf16'), ['params.json', 'consolidated.00.pth', 'consolidated.01.pth'], (dir) => {
    const p = JSON.parse(readFileSync(join(dir, 'params.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'params.json'), JSON.stringify({ ...p, n_kv_heads: 3 }));
    throwsLlama(
      () => readMetaDir(dir),
      /tensor "layers\.0\.attention\.wk\.weight" in consolidated\.00\.pth, consolidated\.01\.pth has shape \[32, 96\] but params\.json \(dim 96, 6\/3 heads, vocab 300\) expects \[48, 96\]/,
    );
    writeFileSync(join(dir, 'params.json'), JSON.stringify({ ...p, n_layers: 4 }));
    throwsLlama(() => readMetaDir(dir), /\(consolidated\.00\.pth, consolidated\.01\.pth\): missing tensor "layers\.3\.attention_norm\.weight"/);
  });
});

test('a truncated .pth is a clear error naming the file', () => {
  withCopy(join(FMT, 'pth_a_tiny'), ['params.json'], (dir) => {
    const whole = readFileSync(join(FMT, 'pth_a_tiny/consolidated.00.pth'));
    writeFileSync(join(dir, 'consolidated.00.pth'), whole.subarray(0, whole.length - 1000));
    throwsLlama(() => readMetaDir(dir), /consolidated\.00\.pth: no zip end-of-central-directory record: the file is truncated/);
  });
});
