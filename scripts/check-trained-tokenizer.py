"""Dev check: a tokenizer trained by src/tokenizer/train.ts is a valid SentencePiece BPE model.

It trains a vocabulary with our trainer (through `npx tsx`) on synthetic stories plus optional extra
text files, writes it with writeTokenizerModel, loads it with python's sentencepiece
(/usr/bin/python3 has 0.1.97), checks the layout (unk/bos/eos, 256 byte pieces, scores), then
encodes held-out text (other stories, the extra files' tail, tricky strings) with both libraries
and compares ids and decoded text. Exit status 0 when everything agrees.

Usage (from the repository root):
  /usr/bin/python3 scripts/check-trained-tokenizer.py [--stories 3000] [--vocab 1024]
      [--coverage 0.9995] [--extra FILE ...] [--heldout 300]
Not a unit test (the committed JS tests do not need python); run it after changing the trainer.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TRICKY = [
    "", " ", "  two  spaces  ", "tabs\tand\tmore", "Numbers 12345 and 3.14159 and 2024-06-01",
    "CAPS LOCK and MiXeD", "naïve café résumé", "Ünïcödé ñ ß ø", "中文字符 日本語 カタカナ", "한국어 텍스트",
    "Emoji 🦀🎉 and ❤️", "line one\nline two", "\n\nleading newlines", "trailing space ",
    "\"Quotes,\" she said. 'Single' too!", "a" * 40, "▁ literal meta symbol", "<s> </s> <unk> <0x41>",
    "x=1; y=[2,3]; z={'k': 42}", "Once upon a time, there was a little girl named Lily.",
]

TS_PROGRAM = r"""
import { readFileSync, writeFileSync } from 'node:fs';
const root = process.env.CHECK_ROOT!;
const cfg = JSON.parse(readFileSync(process.env.CHECK_CFG!, 'utf8'));
const { generateStories } = await import(root + '/src/data/stories.ts');
const { WordCounts, trainBpe } = await import(root + '/src/tokenizer/train.ts');
const { writeTokenizerModel } = await import(root + '/src/tokenizer/load.ts');
const { Tokenizer } = await import(root + '/src/tokenizer/tokenizer.ts');
const counts = new WordCounts();
let bytes = 0;
const train = generateStories({ seed: 1, count: cfg.stories }).stories;
for (const s of train) { counts.addText(s); bytes += Buffer.byteLength(s) + 1; }
for (const text of cfg.extraTrain) { counts.addText(text); bytes += Buffer.byteLength(text); }
const t0 = performance.now();
const { vocab, stats } = trainBpe(counts, { vocabSize: cfg.vocab, characterCoverage: cfg.coverage, hardVocabLimit: false });
const ms = performance.now() - t0;
writeTokenizerModel(cfg.model, vocab);
const tok = new Tokenizer(vocab);
const ids = cfg.heldout.map((t: string) => Array.from(tok.encode(t)));
const decoded = ids.map((x: number[]) => tok.decode(x));
writeFileSync(cfg.out, JSON.stringify({ ids, decoded, stats, trainMs: ms, bytes, vocabSize: vocab.pieces.length }));
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stories", type=int, default=3000)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--coverage", type=float, default=0.9995)
    ap.add_argument("--extra", nargs="*", default=[], help="extra training text files (their last 10%% is held out)")
    ap.add_argument("--heldout", type=int, default=300, help="held-out stories")
    a = ap.parse_args()

    extra_train, extra_held = [], []
    for path in a.extra:
        lines = open(path, encoding="utf-8", errors="replace").read().split("\n")
        cut = int(len(lines) * 0.9)
        extra_train.append("\n".join(lines[:cut]))
        extra_held.extend(l for l in lines[cut:] if l.strip())

    with tempfile.TemporaryDirectory() as tmp:
        prog = os.path.join(tmp, "train.mts")
        open(prog, "w").write(TS_PROGRAM)
        # held-out stories: seed 2 (training used seed 1)
        held_prog = os.path.join(tmp, "held.mts")
        open(held_prog, "w").write(
            "const { generateStories } = await import(process.env.CHECK_ROOT + '/src/data/stories.ts');\n"
            f"process.stdout.write(JSON.stringify(generateStories({{ seed: 2, count: {a.heldout} }}).stories));\n")
        env = dict(os.environ, CHECK_ROOT=ROOT)
        held = json.loads(subprocess.run(["npx", "tsx", held_prog], cwd=ROOT, env=env, check=True,
                                         capture_output=True, text=True).stdout)
        heldout = held + extra_held[:2000] + TRICKY
        cfg = os.path.join(tmp, "cfg.json")
        model = os.path.join(tmp, "tokenizer.model")
        out = os.path.join(tmp, "out.json")
        json.dump({"stories": a.stories, "vocab": a.vocab, "coverage": a.coverage, "extraTrain": extra_train,
                   "heldout": heldout, "model": model, "out": out}, open(cfg, "w"))
        subprocess.run(["npx", "tsx", prog], cwd=ROOT, env=dict(env, CHECK_CFG=cfg), check=True)
        ours = json.load(open(out))

        sp = spm.SentencePieceProcessor(model_file=model)
        problems = []
        n = sp.get_piece_size()
        if n != ours["vocabSize"]:
            problems.append(f"piece count: sentencepiece {n}, ours {ours['vocabSize']}")
        if (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) != (0, 1, 2, -1):
            problems.append(f"special ids {(sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id())}")
        for b in range(256):
            if not sp.is_byte(3 + b) or sp.id_to_piece(3 + b) != f"<0x{b:02X}>":
                problems.append(f"id {3 + b} is not byte piece <0x{b:02X}>")
                break
        scores = [sp.get_score(i) for i in range(259, n)]
        if any(scores[i] != -i for i in range(len(scores))):
            problems.append("scores of pieces 259.. are not 0, -1, -2, ...")
        mismatches = 0
        for i, text in enumerate(heldout):
            ref = sp.encode(text)
            if ref != ours["ids"][i] or sp.decode(ref) != ours["decoded"][i]:
                mismatches += 1
                if mismatches <= 5:
                    problems.append(f"text {i} {text[:60]!r}: sentencepiece {ref[:20]} ours {ours['ids'][i][:20]}; "
                                    f"decoded {sp.decode(ref)[:40]!r} vs {ours['decoded'][i][:40]!r}")
        chars = sum(len(t) for t in heldout)
        toks = sum(len(sp.encode(t)) for t in heldout)
        st = ours["stats"]
        print(f"trained on {ours['bytes'] / 1e6:.2f} MB in {ours['trainMs'] / 1000:.2f} s "
              f"({ours['bytes'] / 1e6 / (ours['trainMs'] / 1000):.1f} MB/s after counting): {n} pieces, "
              f"{st['merges']} merges, {st['characters']} characters (coverage {st['coverage']:.5f})")
        print(f"held-out: {len(heldout)} texts, {chars} chars, {toks} tokens ({chars / max(toks, 1):.2f} chars/token), "
              f"{len(heldout) - mismatches} identical")
        for p in problems:
            print("MISMATCH:", p)
        print("PASS" if not problems else "FAIL")
        return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
