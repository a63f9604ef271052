"""Writes tests/fixtures/formats/: model files in the formats src/formats/* reads, made with the
real tools (torch.save, Meta's model-parallel split, HF's q/k permutation, llama2.c's export
layouts) from the oracle's Meta weights, plus deliberately broken files for the error tests.

Run from the repository root with Debian's python (torch 1.13, numpy, sentencepiece):
    /usr/bin/python3 scripts/make-format-fixtures.py [--oracle-dir /work/shared/oracle] [--only a,b]

Deterministic apart from torch.save's archive name (taken from the file name). Sizes are kept
small: a_tiny_mha (dim 64) and b_gqa (dim 96) only, reduced precisions where a copy is not needed.
"""
import argparse
import collections
import json
import os
import shutil
import struct
import sys
import zipfile

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORACLE = os.path.join(ROOT, "tests", "fixtures", "oracle")
OUT = os.path.join(ROOT, "tests", "fixtures", "formats")

ap = argparse.ArgumentParser()
ap.add_argument("--oracle-dir", default="/work/shared/oracle", help="folder with safetensors_io.py")
ap.add_argument("--only", default="", help="comma-separated fixture folders to (re)write alone: hf2_b_gqa_bf16, hf2_a_tiny_bin_f16")
args = ap.parse_args()
sys.path.insert(0, args.oracle_dir)
import safetensors_io  # noqa: E402  (the oracle's numpy-only reader/writer)


def load_meta(case):
    """Oracle Meta weights as float32 torch tensors, plus params.json."""
    d = os.path.join(ORACLE, case, "meta")
    arrays, _ = safetensors_io.load_file(os.path.join(d, "consolidated.safetensors"))
    with open(os.path.join(d, "params.json")) as f:
        params = json.load(f)
    return collections.OrderedDict((k, torch.from_numpy(np.array(v, dtype=np.float32))) for k, v in arrays.items()), params


def fresh(name):
    p = os.path.join(OUT, name)
    shutil.rmtree(p, ignore_errors=True)
    os.makedirs(p)
    return p


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def rope_freqs(params):
    hd = params["dim"] // params["n_heads"]
    return 1.0 / (10000.0 ** (torch.arange(0, hd, 2)[: hd // 2].float() / hd))


# ------------------------------------------------------------------------------------------
# Meta .pth checkpoints

COLUMN = ("attention.wq.weight", "attention.wk.weight", "attention.wv.weight", "feed_forward.w1.weight",
          "feed_forward.w3.weight", "output.weight")
ROW = ("attention.wo.weight", "feed_forward.w2.weight", "tok_embeddings.weight")


def meta_split(sd, n):
    """Meta's model-parallel split: ColumnParallelLinear on dim 0, RowParallelLinear and
    ParallelEmbedding on dim 1, norms replicated. Each shard's tensors are contiguous copies."""
    shards = [collections.OrderedDict() for _ in range(n)]
    for k, v in sd.items():
        if k.endswith(COLUMN):
            parts = torch.chunk(v, n, dim=0)
        elif k.endswith(ROW):
            parts = torch.chunk(v, n, dim=1)
        else:
            parts = [v] * n
        assert len(parts) == n, k
        for s, p in zip(shards, parts):
            s[k] = p.clone().contiguous()
    return shards


def write_pth_dir(name, case, n_shards, dtype, with_metadata):
    sd, params = load_meta(case)
    sd = collections.OrderedDict((k, v.to(dtype)) for k, v in sd.items())
    d = fresh(name)
    write_json(os.path.join(d, "params.json"), params)
    for i, shard in enumerate(meta_split(sd, n_shards)):
        shard["rope.freqs"] = rope_freqs(params).to(dtype)  # Meta's checkpoints carry it too
        if with_metadata:  # what nn.Module.state_dict() attaches; pickled with BUILD
            shard._metadata = collections.OrderedDict({"": {"version": 1}})
        torch.save(shard, os.path.join(d, f"consolidated.{i:02d}.pth"))
    # self-check: merging the shards back gives the original tensors
    loaded = [torch.load(os.path.join(d, f"consolidated.{i:02d}.pth")) for i in range(n_shards)]
    for k, v in sd.items():
        parts = [s[k] for s in loaded]
        m = torch.cat(parts, 0) if k.endswith(COLUMN) else torch.cat(parts, 1) if k.endswith(ROW) else parts[0]
        assert torch.equal(m, v), k


# ------------------------------------------------------------------------------------------
# HF sharded directory

def write_hf_sharded(name, case, dtype):
    d = fresh(name)
    src = os.path.join(ORACLE, case, "hf")
    arrays, _ = safetensors_io.load_file(os.path.join(src, "model.safetensors"))
    # self-check: the oracle's HF q/k are Meta's rows permuted the way HF's converter does it
    meta, params = load_meta(case)
    nh, nkv = params["n_heads"], params.get("n_kv_heads", params["n_heads"])

    def permute(w, n):
        rows, cols = w.shape
        return w.view(n, rows // n // 2, 2, cols).transpose(1, 2).reshape(rows, cols)

    for l in range(params["n_layers"]):
        q = torch.from_numpy(np.array(arrays[f"model.layers.{l}.self_attn.q_proj.weight"]))
        k = torch.from_numpy(np.array(arrays[f"model.layers.{l}.self_attn.k_proj.weight"]))
        assert torch.equal(q, permute(meta[f"layers.{l}.attention.wq.weight"], nh))
        assert torch.equal(k, permute(meta[f"layers.{l}.attention.wk.weight"], nkv))
    names = list(arrays.keys())
    half = len(names) // 2
    groups = [names[:half], names[half:]]
    write_hf_shards(d, src, arrays, groups, dtype, "model-{:05d}-of-{:05d}.safetensors", "model.safetensors.index.json",
                    lambda tensors, path: safetensors_io.save_file(tensors, path, metadata={"format": "pt"}))


def write_hf_shards(d, src, arrays, groups, dtype, pattern, index_name, save):
    """groups of tensor names → shard files (pattern.format(i, n)) written by save(dict, path), the
    index with HF's weight_map, and the source config.json with torch_dtype set"""
    weight_map = {}
    total = 0
    for i, g in enumerate(groups):
        fname = pattern.format(i + 1, len(groups))
        tensors = collections.OrderedDict((n, torch.from_numpy(np.array(arrays[n], dtype=np.float32)).to(dtype)) for n in g)
        save(tensors, os.path.join(d, fname))
        for n, t in tensors.items():
            weight_map[n] = fname
            total += t.numel() * t.element_size()
    write_json(os.path.join(d, index_name), {"metadata": {"total_size": total}, "weight_map": weight_map})
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)
    cfg["torch_dtype"] = {torch.bfloat16: "bfloat16", torch.float16: "float16", torch.float32: "float32"}[dtype]
    write_json(os.path.join(d, "config.json"), cfg)


def write_hf_pytorch_bin(name, case, dtype):
    """HF's older layout: state-dict shards written by torch.save (pytorch_model-0000i-of-0000n.bin)
    with pytorch_model.bin.index.json, the same tensors as the oracle's model.safetensors."""
    d = fresh(name)
    src = os.path.join(ORACLE, case, "hf")
    arrays, _ = safetensors_io.load_file(os.path.join(src, "model.safetensors"))
    names = list(arrays.keys())
    half = len(names) // 2
    write_hf_shards(d, src, arrays, [names[:half], names[half:]], dtype, "pytorch_model-{:05d}-of-{:05d}.bin",
                    "pytorch_model.bin.index.json", torch.save)


# ------------------------------------------------------------------------------------------
# llama2.c .bin files (layouts of karpathy/llama2.c export.py, written here from its description)

def f32(f, t):
    f.write(t.detach().contiguous().view(-1).numpy().astype("<f4").tobytes())


def llama2c_header_ints(sd, params, vocab):
    hidden = sd["layers.0.feed_forward.w1.weight"].shape[0]
    nkv = params.get("n_kv_heads") or params["n_heads"]
    return struct.pack("<7i", params["dim"], hidden, params["n_layers"], params["n_heads"], nkv, vocab, SEQ_LEN)


SEQ_LEN = 64


def by_kind(sd, n_layers, kind):
    return [sd[f"layers.{l}.{kind}.weight"] for l in range(n_layers)]


def write_llama2c_v0(path, sd, params, shared):
    L = params["n_layers"]
    vocab = sd["tok_embeddings.weight"].shape[0]
    with open(path, "wb") as f:
        f.write(llama2c_header_ints(sd, params, vocab if shared else -vocab))
        f32(f, sd["tok_embeddings.weight"])
        for kind in ("attention_norm", "attention.wq", "attention.wk", "attention.wv", "attention.wo",
                     "ffn_norm", "feed_forward.w1", "feed_forward.w2", "feed_forward.w3"):
            for t in by_kind(sd, L, kind):
                f32(f, t)
        f32(f, sd["norm.weight"])
        ang = torch.outer(torch.arange(SEQ_LEN).float(), rope_freqs(params))  # (T, HS/2)
        f32(f, torch.cos(ang))
        f32(f, torch.sin(ang))
        if not shared:
            f32(f, sd["output.weight"])


def v1_header(f, sd, params, version, shared, group_size=None):
    vocab = sd["tok_embeddings.weight"].shape[0]
    f.write(struct.pack("<I", 0x616B3432))
    f.write(struct.pack("<i", version))
    f.write(llama2c_header_ints(sd, params, vocab))
    f.write(struct.pack("<B", int(shared)))
    if group_size is not None:
        f.write(struct.pack("<i", group_size))
    f.write(b"\0" * (256 - f.tell()))


def matrices(sd, L):
    out = [sd["tok_embeddings.weight"]]
    for kind in ("attention.wq", "attention.wk", "attention.wv", "attention.wo",
                 "feed_forward.w1", "feed_forward.w2", "feed_forward.w3"):
        out += by_kind(sd, L, kind)
    return out


def norms(sd, L):
    return by_kind(sd, L, "attention_norm") + by_kind(sd, L, "ffn_norm") + [sd["norm.weight"]]


def write_llama2c_v1(path, sd, params, shared):
    L = params["n_layers"]
    with open(path, "wb") as f:
        v1_header(f, sd, params, 1, shared)
        mats = matrices(sd, L)
        for t in norms(sd, L) + mats[:1] + mats[1:] + ([] if shared else [sd["output.weight"]]):
            f32(f, t)


def write_llama2c_v2(path, sd, params, shared, group_size):
    L = params["n_layers"]
    mats = matrices(sd, L) + ([] if shared else [sd["output.weight"]])
    with open(path, "wb") as f:
        v1_header(f, sd, params, 2, shared, group_size)
        for t in norms(sd, L):
            f32(f, t)
        scales = []
        for w in mats:  # symmetric int8 in groups: value = q * (max|w| / 127)
            g = w.float().reshape(-1, group_size)
            s = g.abs().max(dim=1).values / 127.0
            q = torch.round(g / s[:, None]).to(torch.int8)
            f.write(q.view(-1).numpy().astype("<i1").tobytes())
            scales.append(s)
        for s in scales:
            f32(f, s)


def write_tokenizer_bin(model_path, out_path):
    """llama2.c tokenizer.bin: uint32 max_token_length, then per piece float32 score, int32 length,
    UTF-8 bytes ('▁' → ' ', BOS/EOS written as '\\n<s>\\n' / '\\n</s>\\n')."""
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=model_path)
    toks, scores = [], []
    for i in range(sp.vocab_size()):
        t = sp.id_to_piece(i)
        if i == sp.bos_id():
            t = "\n<s>\n"
        elif i == sp.eos_id():
            t = "\n</s>\n"
        toks.append(t.replace("\u2581", " ").encode("utf-8"))
        scores.append(sp.get_score(i))
    with open(out_path, "wb") as f:
        f.write(struct.pack("<I", max(len(t) for t in toks)))
        for t, s in zip(toks, scores):
            f.write(struct.pack("<fi", s, len(t)))
            f.write(t)


# ------------------------------------------------------------------------------------------
# odd and hostile checkpoints for the pickle / zip tests

class RunsCode:
    """Pickles as a call to os.system: a loader that executes pickles would create the marker."""

    def __reduce__(self):
        return (os.system, ("touch PICKLE_CODE_WAS_EXECUTED",))


def write_bad_files():
    d = fresh("pth_misc")
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    misc = collections.OrderedDict()
    misc["param"] = torch.nn.Parameter(torch.tensor([[1.5, -2.0], [0.25, 8.0]]))
    misc["nested"] = {"view": base[1:3], "same_storage": base, "f64": torch.tensor([1.0, -0.5], dtype=torch.float64),
                      "i64": torch.tensor([3, -4], dtype=torch.int64)}
    misc["transposed"] = base.t()
    misc["plain"] = [1, -7, 2 ** 40, -(2 ** 70), 3.25, "héllo", None, True, False, (1, "a"), b"\x00\xff"]
    torch.save(misc, os.path.join(d, "misc.pth"))
    torch.save({"x": RunsCode()}, os.path.join(d, "evil.pth"))
    assert not os.path.exists("PICKLE_CODE_WAS_EXECUTED")
    small = {"w": torch.tensor([1.0, 2.0, 3.0])}
    torch.save(small, os.path.join(d, "legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save({"c": torch.tensor([1 + 2j], dtype=torch.complex64)}, os.path.join(d, "complex.pth"))
    plain = os.path.join(d, "small.pth")
    torch.save(small, plain)
    with zipfile.ZipFile(plain) as zin:
        items = [(i, zin.read(i.filename)) for i in zin.infolist()]
    with zipfile.ZipFile(os.path.join(d, "compressed.pth"), "w", zipfile.ZIP_DEFLATED) as zout:
        for info, data in items:
            zout.writestr(info.filename, data)
    # ZIP64 records everywhere (Python's zipfile decides by these module limits)
    limits = (zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT)
    zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = 0, 0
    try:
        with zipfile.ZipFile(os.path.join(d, "zip64.pth"), "w", zipfile.ZIP_STORED, allowZip64=True) as zout:
            for info, data in items:
                zout.writestr(info.filename, data)
    finally:
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = limits
    assert torch.equal(torch.load(os.path.join(d, "zip64.pth"))["w"], small["w"])
    os.remove(plain)


def main():
    os.makedirs(OUT, exist_ok=True)
    only = [x for x in args.only.split(",") if x]
    writers = {
        "hf2_b_gqa_bf16": lambda: write_hf_sharded("hf2_b_gqa_bf16", "b_gqa", torch.bfloat16),
        "hf2_a_tiny_bin_f16": lambda: write_hf_pytorch_bin("hf2_a_tiny_bin_f16", "a_tiny_mha", torch.float16),
    }
    if only:
        unknown = [n for n in only if n not in writers]
        if unknown:
            sys.exit(f"--only: unknown fixture {', '.join(unknown)}; expected some of {', '.join(writers)}")
        for n in only:
            writers[n]()
        return
    for w in writers.values():
        w()
    write_pth_dir("pth_a_tiny", "a_tiny_mha", 1, torch.float32, with_metadata=True)
    write_pth_dir("pth2_b_gqa_bf16", "b_gqa", 2, torch.bfloat16, with_metadata=False)
    write_pth_dir("pth2_a_tiny_f16", "a_tiny_mha", 2, torch.float16, with_metadata=True)

    d = fresh("llama2c")
    sd, params = load_meta("a_tiny_mha")
    write_llama2c_v0(os.path.join(d, "a_tiny_v0.bin"), sd, params, shared=False)
    write_llama2c_v0(os.path.join(d, "a_tiny_v0_shared.bin"), sd, params, shared=True)
    write_llama2c_v1(os.path.join(d, "a_tiny_v1.bin"), sd, params, shared=False)
    write_llama2c_v2(os.path.join(d, "a_tiny_v2_shared.bin"), sd, params, shared=True, group_size=64)
    # the fixture tokenizer (2000 pieces) as llama2.c's tokenizer.bin, kept apart from the a_tiny files
    write_tokenizer_bin(os.path.join(ORACLE, "tokenizer", "tokenizer.model"),
                        os.path.join(fresh("llama2c_tokenizer"), "tokenizer.bin"))

    write_bad_files()
    total = 0
    for dp, _, fs in os.walk(OUT):
        for f in fs:
            total += os.path.getsize(os.path.join(dp, f))
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
