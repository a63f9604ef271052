#!/usr/bin/env node
// Bits per character of a pretrained checkpoint on the validation stories of its own corpus — the
// text whose true entropy is known — next to that floor. For runs made before pretraining reported
// it (`floor_text_bpc` in metrics.jsonl); the same rows and the same loss (shardRowsLoss) as the
// pretrain recipe.
//
//   node scripts/stories-bpc.mjs runs/pfull1/pretrain/latest [...]      (after npm run build)
//
// The corpus is rebuilt from the checkpoint's config (seeded, so the same stories, tokenizer and
// shards) in a temporary directory; a tokenizer that differs from the checkpoint's is an error.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildStoriesData } from '../dist/src/data/stories-data.js';
import { lossToBitsPerChar, openShards } from '../dist/src/data/shards.js';
import { loadModelFile } from '../dist/src/formats/load.js';
import { trainModel } from '../dist/src/train/model.js';
import { shardRowsLoss } from '../dist/src/recipes/pretrain.js';
import { Tape } from '../dist/src/train/tape.js';
import { selectBackend } from '../dist/src/backend/select.js';
import { vocabHash } from '../dist/src/data/prepare.js';

const be = selectBackend({});
for (const ckpt of process.argv.slice(2)) {
  const state = JSON.parse(readFileSync(join(ckpt, 'trainer_state.json'), 'utf8'));
  const c = state.config;
  const tmp = mkdtempSync(join(tmpdir(), 'stories-bpc-'));
  try {
    const d = buildStoriesData({ dir: tmp, count: c.stories_count, seed: c.stories_seed, vocabSize: c.vocab_size, seqLen: c.seq_len ?? 256, valFraction: c.val_fraction, worldDocs: c.world_docs });
    const m = loadModelFile(ckpt, { mmap: false });
    if (vocabHash(m.vocab) !== d.meta.tokenizer_hash) throw new Error(`${ckpt}: the rebuilt corpus's tokenizer differs from the checkpoint's`);
    const val = openShards(tmp, 'val');
    const ft = d.floorText ?? { rows: val.numRows, charsPerToken: val.charsPerToken };
    const model = trainModel(m.config, m.weights, { frozen: true });
    const { loss, weight } = shardRowsLoss({ model, evalTape: new Tape(be, false) }, val, ft.rows, 4, state.data.seq_len);
    val.close();
    const bpc = lossToBitsPerChar(loss, ft.charsPerToken);
    console.log(JSON.stringify({ checkpoint: ckpt, stories_bits_per_char: bpc, entropy_floor: d.entropyFloorBpc, above: bpc / d.entropyFloorBpc - 1, rows: ft.rows, tokens: weight }));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
