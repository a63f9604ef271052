/**
 * `prepareData`: corpus files → tokenized, packed, split token shards (layout in shards.ts).
 *
 *   const tok = new Tokenizer(readTokenizerModel('tokenizer.model'));
 *   const meta = prepareData({ inputs: ['stories.jsonl'], tokenizer: tok, outDir: 'data/stories',
 *                              seqLen: 256, valFraction: 0.05, seed: 1 });
 *
 * Streaming: documents are read one at a time (documents.ts), tokenized with BOS and EOS, and go
 * to the train or validation split by a seeded hash of their index (document i goes to validation
 * when hashSeed(seed, i) / 2^32 < valFraction), so the split is deterministic, by document, and
 * independent of the tokenizer. Each split packs its stream into rows of seqLen+1 tokens and
 * writes shards of at most `shardTokens` tokens; memory holds one shard per split.
 * meta.json goes last (atomically), after the old one is removed at the start.
 *
 * What it is not: the reader (shards.ts) or the corpus formats (documents.ts).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { SpmVocab } from '../tokenizer/vocab.js';
import { check, Llama2Error } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { codePoints, corpusKind, readDocuments } from './documents.js';
import { hashSeed } from '../util/rng.js';
import { SHARD_FORMAT, SHARD_VERSION, type ShardMeta, type Split, type SplitMeta, type TokenDtype } from './shards.js';

/** What prepare needs from a tokenizer (src/tokenizer/tokenizer.ts's Tokenizer fits). */
export interface PrepareTokenizer {
  readonly vocab: SpmVocab;
  encode(text: string, opts: { bos?: boolean; eos?: boolean }): ArrayLike<number>;
}

export interface PrepareOptions {
  /** .txt (blank-line separated documents) or .jsonl files */
  inputs: string[];
  tokenizer: PrepareTokenizer;
  outDir: string;
  /** T: a row holds T+1 tokens */
  seqLen: number;
  /** share of documents for validation, in [0, 1) */
  valFraction: number;
  seed: number;
  /** JSONL field with the text (default "text") */
  textKey?: string;
  /** most tokens per shard file (default 2^24) */
  shardTokens?: number;
  /** called every 1000 documents and at the end */
  onProgress?: (p: { docs: number; tokens: number }) => void;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A hash of everything that decides tokenization: pieces, scores, types, special ids, flags. */
export function vocabHash(v: SpmVocab): string {
  const h = createHash('sha256');
  h.update(v.pieces.join('\u0000'));
  h.update(new Uint8Array(v.scores.buffer, v.scores.byteOffset, v.scores.byteLength));
  h.update(v.types);
  h.update(JSON.stringify([v.bosId, v.eosId, v.unkId, v.padId, v.addDummyPrefix]));
  return h.digest('hex').slice(0, 16);
}

/** Packs one split's token stream into rows of T+1 and writes them out in shards. */
class SplitWriter {
  docs = 0;
  chars = 0;
  tokens = 0;
  rows = 0;
  /** docs, chars and tokens per input file, in input order */
  readonly byInput: { docs: number; chars: number; tokens: number }[] = [];
  readonly shards: { file: string; rows: number }[] = [];
  private pending: number[] = [];
  private start = 0; // first pending token not yet consumed as a row start
  private readonly shard: Uint16Array | Uint32Array;
  private shardRows = 0;
  private readonly rowsPerShard: number;

  constructor(private readonly outDir: string, private readonly split: Split, private readonly T: number, dtype: TokenDtype, shardTokens: number) {
    this.rowsPerShard = Math.max(1, Math.floor(shardTokens / (T + 1)));
    const n = this.rowsPerShard * (T + 1);
    this.shard = dtype === 'uint16' ? new Uint16Array(n) : new Uint32Array(n);
  }

  add(ids: ArrayLike<number>, chars: number, input: number): void {
    while (this.byInput.length <= input) this.byInput.push({ docs: 0, chars: 0, tokens: 0 });
    const b = this.byInput[input]!;
    b.docs++;
    b.chars += chars;
    b.tokens += ids.length;
    this.docs++;
    this.chars += chars;
    this.tokens += ids.length;
    for (let i = 0; i < ids.length; i++) this.pending.push(ids[i]!);
    const R = this.T + 1;
    while (this.pending.length - this.start >= R) {
      this.shard.set(this.pending.slice(this.start, this.start + R), this.shardRows * R); // (T+1)
      this.start += this.T; // the row's last token starts the next row
      this.rows++;
      if (++this.shardRows === this.rowsPerShard) this.flush();
    }
    if (this.start > 1 << 16) {
      this.pending = this.pending.slice(this.start);
      this.start = 0;
    }
  }

  flush(): void {
    if (this.shardRows === 0) return;
    const file = `${this.split}_${String(this.shards.length).padStart(4, '0')}.bin`;
    const data = this.shard.subarray(0, this.shardRows * (this.T + 1));
    writeFileAtomic(join(this.outDir, file), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.shards.push({ file, rows: this.shardRows });
    this.shardRows = 0;
  }

  meta(inputs: number): SplitMeta {
    const targets = this.rows * this.T;
    while (this.byInput.length < inputs) this.byInput.push({ docs: 0, chars: 0, tokens: 0 });
    return {
      docs: this.docs,
      chars: this.chars,
      tokens: this.tokens,
      rows: this.rows,
      tokens_dropped: Math.max(0, this.tokens - 1 - targets),
      chars_per_token: this.tokens > 0 ? this.chars / this.tokens : 0,
      shards: this.shards,
      by_input: this.byInput,
    };
  }
}

/** Tokenizes, splits and packs the inputs into `outDir`; returns the meta.json it wrote. */
export function prepareData(o: PrepareOptions): ShardMeta {
  check(LITTLE_ENDIAN, 'prepare: shards are little-endian and this machine is not');
  check(Array.isArray(o.inputs) && o.inputs.length > 0, 'prepare: expected at least one input file but found none');
  check(Number.isInteger(o.seqLen) && o.seqLen >= 1, `prepare: expected seq_len to be a positive integer but found ${o.seqLen}`);
  check(typeof o.valFraction === 'number' && o.valFraction >= 0 && o.valFraction < 1,
    `prepare: expected val_fraction in [0, 1) but found ${o.valFraction}`);
  check(Number.isSafeInteger(o.seed) && o.seed >= 0, `prepare: expected seed to be a non-negative integer but found ${o.seed}`);
  const shardTokens = o.shardTokens ?? 1 << 24;
  check(Number.isInteger(shardTokens) && shardTokens >= 1, `prepare: expected shard_tokens >= 1 but found ${shardTokens}`);
  const textKey = o.textKey ?? 'text';
  const vocab = o.tokenizer.vocab;
  const V = vocab.pieces.length;
  check(vocab.bosId >= 0 && vocab.eosId >= 0, 'prepare: the tokenizer has no BOS or EOS piece; documents need both');
  const inputs = o.inputs.map((path) => {
    corpusKind(path); // extension check before any work
    let st;
    try {
      st = statSync(path);
    } catch {
      throw new Llama2Error(`prepare: input ${path}: no such file`);
    }
    check(st.isFile(), `prepare: input ${path}: expected a file but found a directory or device`);
    return { path, bytes: st.size };
  });

  const dtype: TokenDtype = V <= 0x10000 ? 'uint16' : 'uint32';
  const created = mkdirSync(o.outDir, { recursive: true }); // the first directory made; undefined if it existed
  rmSync(join(o.outDir, 'meta.json'), { force: true });
  const writers: Record<Split, SplitWriter> = {
    train: new SplitWriter(o.outDir, 'train', o.seqLen, dtype, shardTokens),
    val: new SplitWriter(o.outDir, 'val', o.seqLen, dtype, shardTokens),
  };
  try {
    const meta = writeSplits(o, inputs, writers, dtype, textKey);
    writeFileAtomic(join(o.outDir, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
    return meta;
  } catch (e) {
    // leave nothing behind: the directories this call made, else the shards it wrote
    if (created !== undefined) rmSync(created, { recursive: true, force: true });
    else for (const w of Object.values(writers)) for (const sh of w.shards) rmSync(join(o.outDir, sh.file), { force: true });
    throw e;
  }
}

/** Reads, tokenizes and packs every document into the writers; returns the meta.json record. */
function writeSplits(
  o: PrepareOptions, inputs: ShardMeta['inputs'], writers: Record<Split, SplitWriter>, dtype: TokenDtype, textKey: string,
): ShardMeta {
  const vocab = o.tokenizer.vocab;
  const V = vocab.pieces.length;
  const valCut = o.valFraction * 0x100000000;
  let docIndex = 0;
  let tokens = 0;
  for (const [k, { path }] of inputs.entries()) {
    for (const doc of readDocuments(path, textKey)) {
      const ids = o.tokenizer.encode(doc.text, { bos: true, eos: true });
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!;
        if (!(Number.isInteger(id) && id >= 0 && id < V)) {
          throw new Llama2Error(`prepare: ${doc.where}: the tokenizer produced id ${id}, outside 0..${V - 1}`);
        }
      }
      const split: Split = hashSeed(o.seed, docIndex) < valCut ? 'val' : 'train';
      writers[split].add(ids, codePoints(doc.text) + 1, k);
      docIndex++;
      tokens += ids.length;
      if (docIndex % 1000 === 0) o.onProgress?.({ docs: docIndex, tokens });
    }
  }
  o.onProgress?.({ docs: docIndex, tokens });
  check(docIndex > 0, () => `prepare: the corpus is empty: no documents in ${o.inputs.join(', ')}`);
  writers.train.flush();
  writers.val.flush();
  const train = writers.train.meta(inputs.length);
  const val = writers.val.meta(inputs.length);
  const need = o.seqLen + 1;
  check(train.rows > 0, () =>
    `prepare: the train split has ${train.tokens} tokens, fewer than one row of seq_len+1 = ${need}; add text or lower seq_len`);
  check(o.valFraction === 0 || val.rows > 0, () =>
    `prepare: the validation split has ${val.docs} documents and ${val.tokens} tokens, fewer than one row of seq_len+1 = ${need}; ` +
    'add text, raise val_fraction or lower seq_len');

  const meta: ShardMeta = {
    format: SHARD_FORMAT,
    version: SHARD_VERSION,
    vocab_size: V,
    dtype,
    seq_len: o.seqLen,
    bos_id: vocab.bosId,
    eos_id: vocab.eosId,
    tokenizer_hash: vocabHash(vocab),
    seed: o.seed,
    val_fraction: o.valFraction,
    text_key: textKey,
    inputs,
    splits: { train, val },
  };
  return meta;
}
