/**
 * What the fuzz harness attacks: one target per reader, each with its valid inputs (bundles of
 * files from tests/fixtures/, or small files the project's writers derive from them), the byte
 * ranges where each file keeps its header and metadata, and the function that reads a case. A
 * case is a pure function of (target, seed, index): `makeCase` mutates one file of one bundle,
 * and `runCase` writes the bundle into a directory and reads it the way the CLI would (then
 * builds the tokenizer and, for small models, runs one forward step, so a file that loads but
 * lies is caught too).
 *
 * What it is not: the mutations (mutate.ts) or the processes, limits and report (main.ts, worker.ts).
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng, hashSeed } from '../../src/util/rng.js';
import { loadModelFile } from '../../src/formats/load.js';
import { openGguf } from '../../src/formats/gguf.js';
import { openPth } from '../../src/formats/pickle.js';
import { writeGgufModel } from '../../src/formats/gguf-writer.js';
import { readLlama2cTokenizer, readTokenizerJson, readTokenizerModel } from '../../src/tokenizer/load.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import type { SpmVocab } from '../../src/tokenizer/vocab.js';
import { readChatFile, readChatPrompts } from '../../src/data/chat-data.js';
import { readPreferences } from '../../src/data/preferences.js';
import { Model } from '../../src/model/forward.js';
import { refBackend } from '../../src/backend/ref.js';
import { paramCount } from '../../src/model/config.js';
import type { LoadedModel } from '../../src/formats/types.js';
import { mutateBytes, mutateJsonText, type Regions } from './mutate.js';

export const TARGETS = ['gguf', 'safetensors', 'pickle', 'tokenizer-model', 'tokenizer-json', 'llama2c', 'jsonl'] as const;
export type TargetName = (typeof TARGETS)[number];

interface MutableFile {
  file: string;
  kind: 'binary' | 'json' | 'jsonl';
  hot: Regions;
  /** relative chance of being the file mutated */
  weight: number;
}

export interface Bundle {
  name: string;
  files: Record<string, Uint8Array>;
  mutable: MutableFile[];
  /** the path (relative to the case directory) handed to the reader */
  entry: string;
  read: (path: string, mmap: boolean) => void;
}

export interface Case {
  target: TargetName;
  index: number;
  bundle: string;
  mutated: string;
  files: Record<string, Uint8Array>;
  entry: string;
  mmap: boolean;
  read: Bundle['read'];
}

export function repoRoot(): string {
  const here = new URL('.', import.meta.url).pathname;
  return here.includes('/dist/') ? here.slice(0, here.indexOf('/dist/')) : here.replace(/\/scripts\/fuzz\/$/, '');
}
const fx = (...p: string[]) => join(repoRoot(), 'tests', 'fixtures', ...p);
const file = (...p: string[]) => new Uint8Array(readFileSync(fx(...p)));

const TEXT = 'Hello world! 42 ü 日本 ▁x <s>';

/** What a case does after a reader succeeds: build the tokenizer and use it. */
function exerciseVocab(v: SpmVocab | null): void {
  if (!v) return;
  const tok = new Tokenizer(v);
  tok.decode(tok.encode(TEXT, { bos: true }));
}

/** …and for a model: one forward step when it is small enough to be quick. */
function exerciseModel(m: LoadedModel): void {
  exerciseVocab(m.vocab);
  if (paramCount(m.config) > 3_000_000) return;
  const model = new Model(m.config, m.weights, refBackend);
  model.step([Math.min(1, m.config.vocab_size - 1)], model.newCache(1));
}

const readModel = (path: string, mmap: boolean) => exerciseModel(loadModelFile(path, { mmap }));

// ---------------------------------------------------------------------------------------------
// header regions of valid files

function ggufHot(path: string): Regions {
  const g = openGguf(path);
  g.close();
  return [[0, g.dataOffset]];
}

function safetensorsHot(b: Uint8Array): Regions {
  const hlen = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  return [[0, 8 + hlen]];
}

/** zip records (local headers, central directory, end records) and the pickle inside. */
function zipHot(b: Uint8Array): Regions {
  const out: [number, number][] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i + 4 <= b.length; i++) {
    if (b[i] !== 0x50 || b[i + 1] !== 0x4b) continue;
    const sig = dv.getUint32(i, true);
    if (sig === 0x04034b50 && i + 30 <= b.length) { // local header: the record, its name, and data.pkl's data
      const nameLen = dv.getUint16(i + 26, true);
      const extra = dv.getUint16(i + 28, true);
      const size = dv.getUint32(i + 18, true);
      const name = Buffer.from(b.subarray(i + 30, i + 30 + nameLen)).toString('latin1');
      out.push([i, i + 30 + nameLen + extra]);
      if (name.endsWith('.pkl')) out.push([i + 30 + nameLen + extra, i + 30 + nameLen + extra + size]);
    } else if (sig === 0x02014b50 || sig === 0x06054b50 || sig === 0x06064b50 || sig === 0x07064b50) {
      out.push([i, Math.min(b.length, i + 64)]);
    }
  }
  return out;
}

const whole = (b: Uint8Array): Regions => [[0, b.length]];

// ---------------------------------------------------------------------------------------------
// bundles per target

function modelDir(dir: string[], weightsFile: string, hot: (b: Uint8Array) => Regions, extra: string[] = []): Bundle {
  const files: Record<string, Uint8Array> = {};
  for (const n of readdirSync(fx(...dir))) files[n] = file(...dir, n);
  const json = Object.keys(files).filter((n) => n.endsWith('.json'));
  const weightFiles = weightsFile === '*' ? Object.keys(files).filter((n) => !n.endsWith('.json')) : [weightsFile, ...extra];
  return {
    name: dir.join('/'), files, entry: '.',
    mutable: [
      ...weightFiles.map((f) => ({ file: f, kind: 'binary' as const, hot: hot(files[f]!), weight: 8 / weightFiles.length })),
      ...json.map((f) => ({ file: f, kind: 'json' as const, hot: [], weight: 2 / json.length })),
    ],
    read: readModel,
  };
}

/** A small GGUF with a real 2000-piece tokenizer, written by the project's writer from an oracle case. */
function smallGguf(tmp: string): Bundle {
  const src = loadModelFile(fx('oracle', 'e_tok2k_chat', 'hf'), { tokenizer: fx('oracle', 'tokenizer', 'tokenizer.model'), mmap: false });
  const path = join(tmp, 'seed-e_tok2k.gguf');
  writeGgufModel(path, src.config, src.weights, src.vocab, { dtype: 'Q8_0' });
  const b = new Uint8Array(readFileSync(path));
  return { name: 'e_tok2k_chat as GGUF Q8_0', files: { 'm.gguf': b }, entry: 'm.gguf', mutable: [{ file: 'm.gguf', kind: 'binary', hot: ggufHot(path), weight: 1 }], read: readModel };
}

function single(name: string, fname: string, bytes: Uint8Array, kind: MutableFile['kind'], hot: Regions, read: Bundle['read']): Bundle {
  return { name, files: { [fname]: bytes }, entry: fname, mutable: [{ file: fname, kind, hot, weight: 1 }], read };
}

const readPthAll = (path: string) => {
  const f = openPth(path);
  try { for (const n of f.tensors.keys()) f.bytes(n); } finally { f.close(); }
};

/** The valid inputs of a target (tmp: where derived seed files may be written). */
export function bundles(t: TargetName, tmp: string): Bundle[] {
  switch (t) {
    case 'gguf': {
      const real = ['stories15M-Q8_0.gguf', 'tinyk-Q4_K_M.gguf'].map((n) =>
        single(`gguf/${n}`, 'm.gguf', file('gguf', n), 'binary', ggufHot(fx('gguf', n)), readModel));
      const small = smallGguf(tmp);
      return [...Array<Bundle>(16).fill(small), ...real]; // the small one 8 times as often as each real one: ~5 ms a case against ~50-300
    }
    case 'safetensors':
      return [
        ...['a_tiny_mha', 'b_gqa', 'c_odd_ffn'].map((c) => modelDir(['oracle', c, 'hf'], 'model.safetensors', safetensorsHot)),
        modelDir(['formats', 'hf2_b_gqa_bf16'], '*', safetensorsHot),
      ];
    case 'pickle':
      return [
        modelDir(['formats', 'pth_a_tiny'], 'consolidated.00.pth', zipHot),
        modelDir(['formats', 'pth2_a_tiny_f16'], '*', zipHot),
        modelDir(['formats', 'hf2_a_tiny_bin_f16'], '*', zipHot),
        ...readdirSync(fx('formats', 'pth_misc')).map((n) => {
          const b = file('formats', 'pth_misc', n);
          return single(`pth_misc/${n}`, n, b, 'binary', zipHot(b), readPthAll);
        }),
      ];
    case 'tokenizer-model': {
      const read = (p: string) => exerciseVocab(readTokenizerModel(p));
      return [
        single('oracle tokenizer.model', 'tokenizer.model', file('oracle', 'tokenizer', 'tokenizer.model'), 'binary', [], read),
        ...readdirSync(fx('tokenizer-extra', 'variants')).map((n) =>
          single(`variants/${n}`, 'tokenizer.model', file('tokenizer-extra', 'variants', n), 'binary', [], read)),
      ].map((b) => ({ ...b, mutable: b.mutable.map((m) => ({ ...m, hot: whole(b.files['tokenizer.model']!) })) }));
    }
    case 'tokenizer-json':
      return [single('tokenizer.json', 'tokenizer.json', file('tokenizer-extra', 'tokenizer.json'), 'json', [], (p) => exerciseVocab(readTokenizerJson(p)))];
    case 'llama2c': {
      const tok = file('formats', 'llama2c_tokenizer', 'tokenizer.bin');
      const models = readdirSync(fx('formats', 'llama2c')).filter((n) => n.endsWith('.bin')).map((n): Bundle => {
        const b = file('formats', 'llama2c', n);
        return {
          name: `llama2c/${n}`, files: { 'model.bin': b, 'tokenizer.bin': tok }, entry: 'model.bin', read: readModel,
          mutable: [{ file: 'model.bin', kind: 'binary', hot: [[0, 256]], weight: 3 }, { file: 'tokenizer.bin', kind: 'binary', hot: [[0, 4096]], weight: 1 }],
        };
      });
      return [...models, single('tokenizer.bin', 'tokenizer.bin', tok, 'binary', whole(tok), (p) => exerciseVocab(readLlama2cTokenizer(p)))];
    }
    case 'jsonl':
      return [
        single('chat.jsonl', 'chat.jsonl', file('fuzz', 'seeds', 'chat.jsonl'), 'jsonl', [], (p) => { for (const _ of readChatFile(p)); }),
        single('prompts.jsonl', 'prompts.jsonl', file('fuzz', 'seeds', 'prompts.jsonl'), 'jsonl', [], (p) => void readChatPrompts(p)),
        single('prefs.jsonl', 'prefs.jsonl', file('fuzz', 'seeds', 'prefs.jsonl'), 'jsonl', [], (p) => { for (const _ of readPreferences(p)); }),
      ];
  }
}

/** One line of a JSONL file mutated as JSON (sometimes a line dropped or repeated). */
function mutateJsonl(rng: Rng, b: Uint8Array): Uint8Array {
  const lines = Buffer.from(b).toString('utf8').split('\n');
  const i = rng.below(lines.length);
  const r = rng.float();
  if (r < 0.1) lines.splice(i, 1);
  else if (r < 0.15) lines.splice(i, 0, lines[i]!);
  else lines[i] = Buffer.from(mutateJsonText(rng, new TextEncoder().encode(lines[i]!))).toString('latin1');
  return new Uint8Array(Buffer.from(lines.join('\n'), 'latin1'));
}

/** Case `index` of `target` for `seed`: which bundle, which file, which mutations. */
export function makeCase(target: TargetName, all: Bundle[], seed: number, index: number): Case {
  const rng = new Rng(hashSeed(seed, TARGETS.indexOf(target), index));
  const b = rng.pick(all);
  let r = rng.float() * b.mutable.reduce((s, m) => s + m.weight, 0);
  const m = b.mutable.find((x) => (r -= x.weight) < 0) ?? b.mutable[b.mutable.length - 1]!;
  let bytes = b.files[m.file]!;
  for (let n = 1 + (rng.float() < 0.5 ? 0 : rng.below(4)); n > 0; n--) {
    if (m.kind === 'json') bytes = mutateJsonText(rng, bytes);
    else if (m.kind === 'jsonl') bytes = mutateJsonl(rng, bytes);
    else bytes = mutateBytes(rng, bytes, m.hot);
  }
  return {
    target, index, bundle: b.name, mutated: m.file, files: { ...b.files, [m.file]: bytes },
    entry: b.entry, mmap: rng.float() < 0.5, read: b.read,
  };
}

/** Writes a case's files into `dir` (emptied first); returns the path to read. */
export function writeCase(c: Case, dir: string): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [n, b] of Object.entries(c.files)) writeFileSync(join(dir, n), b);
  return join(dir, c.entry);
}
