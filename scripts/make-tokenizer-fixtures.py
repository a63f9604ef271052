"""Writes tests/fixtures/tokenizer-extra/ from the oracle's 2000-piece SentencePiece model.

  tokenizer.json   the same vocabulary in Hugging Face's Llama layout (merges listed per piece in
                   score order, each piece's cuts into two vocabulary pieces ordered by their ids)
  tokenizer.bin    the same vocabulary in llama2.c's format (" " for "▁", BOS/EOS as "\\n<s>\\n")
  variants/*.model the model edited: no byte fallback; user-defined and UNUSED pieces; no dummy prefix
  variants.json    sentencepiece's ids and decoded text for each variant on the oracle's
                   200 strings plus extras, decode-only cases, and 300 seeded random strings for
                   the unmodified model

Run with Debian's python (sentencepiece 0.1.97):
  /usr/bin/python3 scripts/make-tokenizer-fixtures.py
Deterministic: the same sentencepiece version writes the same files.
"""
from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import sentencepiece as spm

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "tests/fixtures/oracle/tokenizer"
OUT = ROOT / "tests/fixtures/tokenizer-extra"


# --- protobuf, only as much as needed -----------------------------------------------------------

def read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def fields(buf: bytes):
    i = 0
    while i < len(buf):
        start = i
        key, i = read_varint(buf, i)
        wire = key & 7
        if wire == 0:
            _, i = read_varint(buf, i)
        elif wire == 2:
            n, i = read_varint(buf, i)
            i += n
        elif wire == 5:
            i += 4
        elif wire == 1:
            i += 8
        else:
            raise ValueError(f"wire type {wire}")
        yield key >> 3, buf[start:i], buf


def varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def field_len(num: int, payload: bytes) -> bytes:
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def field_int(num: int, v: int) -> bytes:
    return varint(num << 3) + varint(v)


def piece_msg(piece: str, score: float, typ: int) -> bytes:
    return field_len(1, piece.encode()) + varint(2 << 3 | 5) + struct.pack("<f", score) + field_int(3, typ)


def split_model(buf: bytes):
    """(pieces as (piece, score, type), trainer_spec bytes, normalizer_spec bytes, other top-level fields)"""
    pieces, trainer, normalizer, other = [], b"", b"", b""
    for num, raw, _ in fields(buf):
        _, off = read_varint(raw, 0)
        n, off = read_varint(raw, off)
        payload = raw[off:off + n]
        if num == 1:
            p = {"piece": "", "score": 0.0, "type": 1}
            for f2, raw2, _ in fields(payload):
                _, o2 = read_varint(raw2, 0)
                if f2 == 1:
                    m, o2 = read_varint(raw2, o2)
                    p["piece"] = raw2[o2:o2 + m].decode()
                elif f2 == 2:
                    p["score"] = struct.unpack("<f", raw2[o2:o2 + 4])[0]
                elif f2 == 3:
                    p["type"] = read_varint(raw2, o2)[0]
            pieces.append((p["piece"], p["score"], p["type"]))
        elif num == 2:
            trainer = payload
        elif num == 3:
            normalizer = payload
        else:
            other += raw
    return pieces, trainer, normalizer, other


def join_model(pieces, trainer: bytes, normalizer: bytes, other: bytes) -> bytes:
    out = b"".join(field_len(1, piece_msg(*p)) for p in pieces)
    return out + field_len(2, trainer) + field_len(3, normalizer) + other


# --- HF tokenizer.json and llama2.c tokenizer.bin -----------------------------------------------

def hf_json(sp: spm.SentencePieceProcessor) -> dict:
    n = sp.get_piece_size()
    pieces = [sp.id_to_piece(i) for i in range(n)]
    vocab = {p: i for i, p in enumerate(pieces)}
    normal = [i for i in range(n) if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i))]
    normal.sort(key=lambda i: (-sp.get_score(i), i))
    merges = []
    for i in normal:
        p = pieces[i]
        cuts = [(p[:k], p[k:]) for k in range(1, len(p)) if p[:k] in vocab and p[k:] in vocab]
        cuts.sort(key=lambda lr: (vocab[lr[0]], vocab[lr[1]]))
        merges += [f"{a} {b}" for a, b in cuts]
    special = [i for i in range(n) if sp.is_control(i) or sp.is_unknown(i)]
    tok = lambda i, tid: {"SpecialToken": {"id": pieces[i], "type_id": tid}}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": i, "content": pieces[i], "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i in special],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [tok(sp.bos_id(), 0), {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [tok(sp.bos_id(), 0), {"Sequence": {"id": "A", "type_id": 0}},
                     tok(sp.bos_id(), 1), {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {pieces[sp.bos_id()]: {"id": pieces[sp.bos_id()], "ids": [sp.bos_id()],
                                                      "tokens": [pieces[sp.bos_id()]]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": pieces[sp.unk_id()],
                  "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": True,
                  "byte_fallback": True, "vocab": vocab, "merges": merges},
    }


def llama2c_bin(sp: spm.SentencePieceProcessor) -> bytes:
    toks, scores = [], []
    for i in range(sp.get_piece_size()):
        t = sp.id_to_piece(i)
        if i == sp.bos_id():
            t = "\n<s>\n"
        elif i == sp.eos_id():
            t = "\n</s>\n"
        toks.append(t.replace("▁", " ").encode("utf-8"))
        scores.append(sp.get_score(i))
    out = bytearray(struct.pack("<i", max(len(t) for t in toks)))
    for t, s in zip(toks, scores):
        out += struct.pack("<fi", s, len(t)) + t
    return bytes(out)


# --- variants -------------------------------------------------------------------------------------

EXTRA_TEXTS = [
    "[INST] hello [/INST] <<SYS>>\nbe nice\n<</SYS>>", "🦀🦀 crab 🦀", "abab ab a b babab", "the he she there",
    "    four", "[INST][INST]", "he", "The theme", "▁he", "<s>[INST]",
]


def cases(sp: spm.SentencePieceProcessor, texts):
    out = []
    for t in texts:
        ids = sp.encode(t)
        out.append({"text": t, "ids": ids, "decoded": sp.decode(ids)})
    return out


def random_texts(seed: int, count: int):
    rng = random.Random(seed)
    pool = list("abcdefghijklmnopqrstuvwxyz      ABCTX0123456789.,!?-_'\"\n\t") + \
        list("éèàçñüößøåẫệờ今天气很好我学习こんにちはカタナкзжийαβγ😀🦀👍🎉₹€") + ["▁", "\u200d", "\U0001F3FD"]
    words = ["the", "there", "hello", "world", "Lily", "model", "trained", "once", "upon", "time", "  ", "   "]
    out = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 12)):
            parts.append(rng.choice(words) if rng.random() < 0.4 else "".join(rng.choice(pool) for _ in range(rng.randint(1, 6))))
        out.append(("" if rng.random() < 0.5 else " ").join(parts))
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "variants").mkdir(exist_ok=True)
    model_bytes = (SRC / "tokenizer.model").read_bytes()
    sp = spm.SentencePieceProcessor(model_file=str(SRC / "tokenizer.model"))
    (OUT / "tokenizer.json").write_text(json.dumps(hf_json(sp), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (OUT / "tokenizer.bin").write_bytes(llama2c_bin(sp))

    oracle = json.loads((SRC / "tokenizer_cases.json").read_text(encoding="utf-8"))
    texts = [c["text"] for c in oracle["cases"]] + EXTRA_TEXTS
    pieces, trainer, normalizer, other = split_model(model_bytes)

    # protobuf: a scalar field repeated later wins, so edits are appended to the specs
    no_bytes = [p for p in pieces if p[2] != 6]
    edited = [(p, s, 5 if p in ("he", "▁the") else t) for p, s, t in pieces]
    edited += [("[INST]", 0.0, 4), ("[/INST]", 0.0, 4), ("<<SYS>>", 0.0, 4), ("🦀", 0.0, 4), ("bab", 0.0, 4)]
    variants = {
        "no_byte_fallback": (no_bytes, join_model(no_bytes, trainer + field_int(35, 0), normalizer, other)),
        "user_defined_unused": (edited, join_model(edited, trainer, normalizer, other)),
        "no_dummy_prefix": (pieces, join_model(pieces, trainer, normalizer + field_int(3, 0), other)),
    }
    doc = {"about": __doc__.split("\n\n")[0], "sentencepiece_version": spm.__version__, "variants": {}}
    for name, (_, buf) in variants.items():
        path = OUT / "variants" / f"{name}.model"
        path.write_bytes(buf)
        v = spm.SentencePieceProcessor(model_file=str(path))
        n = v.get_piece_size()
        decode_ids = [list(range(min(n, 300))), [v.piece_to_id("he"), v.piece_to_id("▁the"), 0, 1, 2],
                      [v.piece_to_id("▁"), v.piece_to_id("▁"), v.piece_to_id("[INST]")], list(range(n - 8, n))]
        doc["variants"][name] = {
            "model": f"variants/{name}.model",
            "cases": cases(v, texts),
            "decode_cases": [{"ids": ids, "decoded": v.decode(ids)} for ids in decode_ids],
        }
    doc["random"] = cases(sp, random_texts(20240602, 300))
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    (OUT / "variants.json").write_text(text.replace('{"text"', '\n{"text"') + "\n", encoding="utf-8")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
