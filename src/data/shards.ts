/**
 * Token shards on disk (written by prepare.ts) and the reader that serves training batches.
 *
 * Layout of a prepared directory:
 *   meta.json           ShardMeta (written last, atomically: no meta.json = not finished)
 *   train_0000.bin ...  rows of T+1 token ids, little-endian uint16 (vocab <= 65536) or uint32
 *   val_0000.bin ...
 * A split's token stream is [BOS doc EOS][BOS doc EOS]...; row r holds stream[r*T .. r*T+T], so
 * consecutive rows share one token and every token after the first is a target exactly once
 * (inputs = row[0..T), targets = row[1..T]). The tail shorter than a row is dropped.
 *
 *   const train = openShards('data/stories', 'train', { seed: 1 });
 *   const batch = train.batch(step, 16);      // Int32Array (16, T+1), seeded shuffled order
 *   const val = openShards('data/stories', 'val');
 *   lossToBitsPerChar(valLoss, val.charsPerToken);
 *
 * Characters are counted as Unicode code points of each document plus 1 for its end (its EOS),
 * the convention of the stories corpus, so bits per character are comparable with its entropy.
 *
 * What it is not: tokenization or splitting (prepare.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { check, Llama2Error, plain, describe } from '../util/errors.js';
import { FileReader } from '../util/fs.js';
import { hashSeed, permutation, Rng } from '../util/rng.js';

export type Split = 'train' | 'val';
export type TokenDtype = 'uint16' | 'uint32';

export const SHARD_FORMAT = 'llama2-ts token shards';
export const SHARD_VERSION = 1;

export interface SplitMeta {
  docs: number;
  /** code points of the documents + 1 per document */
  chars: number;
  /** tokens in the split's stream, BOS and EOS included */
  tokens: number;
  rows: number;
  /** stream tokens that are no row's target (the short tail) */
  tokens_dropped: number;
  chars_per_token: number;
  shards: { file: string; rows: number }[];
  /**
   * the same counts per input file, in input order (absent in shards prepared before it was
   * recorded); the split's stream holds the inputs' documents in that order
   */
  by_input?: { docs: number; chars: number; tokens: number }[];
}

export interface ShardMeta {
  format: string;
  version: number;
  vocab_size: number;
  dtype: TokenDtype;
  seq_len: number;
  bos_id: number;
  eos_id: number;
  tokenizer_hash: string;
  seed: number;
  val_fraction: number;
  text_key: string;
  inputs: { path: string; bytes: number }[];
  splits: Record<Split, SplitMeta>;
}

export const DTYPE_BYTES: Record<TokenDtype, number> = { uint16: 2, uint32: 4 };

/** Converts a mean cross-entropy in nats per token into bits per character. */
export function lossToBitsPerChar(meanLossNats: number, charsPerToken: number): number {
  return meanLossNats / Math.LN2 / charsPerToken;
}

export function readShardMeta(dir: string): ShardMeta {
  const path = join(dir, 'meta.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new Llama2Error(`shards: ${path} not found — prepare the data first (an interrupted prepare leaves no meta.json)`);
  }
  let meta: ShardMeta;
  try {
    meta = JSON.parse(text) as ShardMeta;
  } catch (e) {
    throw new Llama2Error(`shards: ${path}: invalid JSON (${plain(e)})`);
  }
  check(meta.format === SHARD_FORMAT, `shards: ${path}: expected format "${SHARD_FORMAT}" but found ${describe(meta.format)}`);
  check(meta.version === SHARD_VERSION, `shards: ${path}: expected version ${SHARD_VERSION} but found ${meta.version} — prepare the data again`);
  check(meta.dtype === 'uint16' || meta.dtype === 'uint32', `shards: ${path}: expected dtype uint16 or uint32 but found ${describe(meta.dtype)}`);
  check(Number.isInteger(meta.seq_len) && meta.seq_len >= 1, `shards: ${path}: expected seq_len >= 1 but found ${meta.seq_len}`);
  return meta;
}

export interface OpenShardsOptions {
  /** seed of the shuffled order (default 0) */
  seed?: number;
  /** default: true for train, false for val */
  shuffle?: boolean;
}

/** Random access to the rows of one split. */
export class ShardReader {
  readonly meta: ShardMeta;
  readonly seqLen: number;
  /** T + 1 */
  readonly rowTokens: number;
  readonly numRows: number;
  readonly vocabSize: number;
  /** characters per token of this split (for bits per character) */
  readonly charsPerToken: number;
  private readonly files: FileReader[] = [];
  /** first row of each shard, plus numRows at the end */
  private readonly starts: number[] = [];
  private readonly rowBytes: number;
  private readonly seed: number;
  private readonly shuffle: boolean;
  private readonly perms = new Map<number, Uint32Array>();

  constructor(readonly dir: string, readonly split: Split, opts: OpenShardsOptions = {}) {
    this.meta = readShardMeta(dir);
    const sm = this.meta.splits?.[split];
    check(sm !== undefined && Array.isArray(sm.shards), `shards: ${join(dir, 'meta.json')}: no "${split}" split`);
    check(sm.rows > 0, `shards: ${dir}: the "${split}" split has no rows`);
    this.seqLen = this.meta.seq_len;
    this.rowTokens = this.seqLen + 1;
    this.vocabSize = this.meta.vocab_size;
    this.charsPerToken = sm.chars_per_token;
    this.rowBytes = this.rowTokens * DTYPE_BYTES[this.meta.dtype];
    this.seed = opts.seed ?? 0;
    this.shuffle = opts.shuffle ?? split === 'train';
    let rows = 0;
    try {
      for (const sh of sm.shards) {
        const f = new FileReader(join(dir, sh.file), `shards: ${sh.file}`);
        this.files.push(f);
        check(f.size === sh.rows * this.rowBytes, () =>
          `shards: ${join(dir, sh.file)}: expected ${sh.rows} rows = ${sh.rows * this.rowBytes} bytes but found ${f.size} bytes — prepare the data again`);
        this.starts.push(rows);
        rows += sh.rows;
      }
    } catch (e) {
      this.close();
      throw e;
    }
    check(rows === sm.rows, `shards: ${dir}: the "${split}" shards hold ${rows} rows but meta.json says ${sm.rows}`);
    this.starts.push(rows);
    this.numRows = rows;
  }

  /** Row i in storage order → (T+1). */
  row(i: number, out: Int32Array = new Int32Array(this.rowTokens), outOffset = 0): Int32Array {
    check(Number.isInteger(i) && i >= 0 && i < this.numRows, () => `shards: row ${i} out of range 0..${this.numRows - 1}`);
    let lo = 0;
    let hi = this.files.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    const bytes = this.files[lo]!.read((i - this.starts[lo]!) * this.rowBytes, this.rowBytes, `row ${i}`);
    const ids = this.meta.dtype === 'uint16'
      ? new Uint16Array(bytes.buffer, bytes.byteOffset, this.rowTokens)
      : new Uint32Array(bytes.buffer, bytes.byteOffset, this.rowTokens);
    out.set(ids, outOffset);
    return out;
  }

  /** Rows by index → (n, T+1). */
  rows(indices: ArrayLike<number>): Int32Array {
    const out = new Int32Array(indices.length * this.rowTokens);
    for (let k = 0; k < indices.length; k++) this.row(indices[k]!, out, k * this.rowTokens);
    return out;
  }

  /**
   * Batch `step` → (B, T+1): rows step*B .. step*B+B-1 of the endless sequence of epochs, each epoch
   * a seeded permutation of all rows (or storage order without shuffle). Same seed, same batches.
   */
  batch(step: number, batchSize: number): Int32Array {
    check(Number.isInteger(step) && step >= 0, `shards: expected a non-negative integer step but found ${step}`);
    check(Number.isInteger(batchSize) && batchSize >= 1, `shards: expected batch size >= 1 but found ${batchSize}`);
    const idx = new Uint32Array(batchSize);
    for (let j = 0; j < batchSize; j++) {
      const p = step * batchSize + j;
      const epoch = Math.floor(p / this.numRows);
      const k = p - epoch * this.numRows;
      idx[j] = this.shuffle ? this.permutation(epoch)[k]! : k;
    }
    return this.rows(idx);
  }

  /** Batches of `batchSize` in one epoch (the last one wraps into the next epoch). */
  batchesPerEpoch(batchSize: number): number {
    return Math.ceil(this.numRows / batchSize);
  }

  private permutation(epoch: number): Uint32Array {
    let p = this.perms.get(epoch);
    if (!p) {
      p = permutation(this.numRows, new Rng(hashSeed(this.seed, epoch)));
      if (this.perms.size >= 2) this.perms.delete(this.perms.keys().next().value!);
      this.perms.set(epoch, p);
    }
    return p;
  }

  close(): void {
    for (const f of this.files.splice(0)) f.close();
  }
}

/** Opens one split of a prepared directory. */
export function openShards(dir: string, split: Split, opts: OpenShardsOptions = {}): ShardReader {
  return new ShardReader(dir, split, opts);
}
