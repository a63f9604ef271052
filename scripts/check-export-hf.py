#!/usr/bin/python3
"""Checks a `llama2 export --to hf` directory from Python, the way transformers would read it.

transformers is not packaged for Debian, so this script reads the directory with what is
(python3-torch, python3-numpy, python3-sentencepiece, python3-jinja2) and an independent
HF-layout forward written here from the published LlamaForCausalLM equations: HF weight names,
q/k rows in HF's rotate-half order (the exporter's permutation), rotate_half RoPE, RMSNorm
computed in float32, SwiGLU, tied or separate lm_head. It compares:

  logits     of a tokenized text against `llama2`'s on the same directory (max |diff| / max |logit|
             must stay under LOGIT_REL_TOL, the oracle's float32 tolerance);
  tokenizer  sentencepiece on tokenizer.model against `llama2 tokenize` (ids identical);
  chat       tokenizer_config.json's chat_template rendered by jinja2 (as transformers does: a
             sandboxed environment, trim_blocks, lstrip_blocks, raise_exception), then tokenized
             as LlamaTokenizer does (special tokens split out, each text piece encoded with the
             dummy prefix), against llama2's Llama-2 chat format (ids identical).

  /usr/bin/python3 scripts/check-export-hf.py DIR      → one JSON line; exit 1 on a mismatch
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch

LOGIT_REL_TOL = 1e-4
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = "Tell me a story in 2 sentences about Jelly the piglet. 42 cats, ü and 日本!"
DIALOGS = [
    [{"role": "user", "content": "Spell the word \"garden\" backwards."}],
    [{"role": "system", "content": "Answer in capitals."}, {"role": "user", "content": "  Name a colour. "},
     {"role": "assistant", "content": "BLUE."}, {"role": "user", "content": "Another?"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": " Hello! "}],
]


def read_safetensors(path):
    """name -> float32 torch tensor (F32, F16, BF16), read with numpy from the raw layout."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        raw = data[8 + n + a:8 + n + b]
        if e["dtype"] == "F32":
            x = np.frombuffer(raw, dtype="<f4")
        elif e["dtype"] == "F16":
            x = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif e["dtype"] == "BF16":
            x = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise SystemExit(f"{path}: {name} has dtype {e['dtype']}; expected F32/F16/BF16")
        out[name] = torch.from_numpy(x.copy()).reshape(e["shape"])
    return out


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def hf_logits(cfg, w, ids):
    """(T, V) logits of LlamaForCausalLM for one sequence."""
    d, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hs, eps, theta = d // nh, cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0)
    t = len(ids)
    inv = 1.0 / (theta ** (torch.arange(0, hs, 2, dtype=torch.float32) / hs))
    ang = torch.outer(torch.arange(t, dtype=torch.float32), inv)
    cos, sin = torch.cat((ang, ang), -1).cos(), torch.cat((ang, ang), -1).sin()  # (T, HS)
    x = w["model.embed_tokens.weight"][torch.tensor(ids)]  # (T, C)
    mask = torch.full((t, t), float("-inf")).triu(1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(t, nh, hs).transpose(0, 1)  # (NH, T, HS)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(t, nkv, hs).transpose(0, 1)  # (NKV, T, HS)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(t, nkv, hs).transpose(0, 1)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = k.repeat_interleave(nh // nkv, 0), v.repeat_interleave(nh // nkv, 0)
        att = torch.softmax(q @ k.transpose(1, 2) / hs ** 0.5 + mask, -1)  # (NH, T, T)
        o = (att @ v).transpose(0, 1).reshape(t, d)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        g = h @ w[p + "mlp.gate_proj.weight"].T
        x = x + (torch.nn.functional.silu(g) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    return x @ head.T


NODE = r"""
const [dir, what, arg] = process.argv.slice(1);
const root = process.env.LLAMA2_ROOT;
const { openModel } = await import(root + '/dist/src/open.js');
const { renderDialog } = await import(root + '/dist/src/chat/format.js');
const o = openModel(dir);
if (what === 'logits') {
  const ids = JSON.parse(arg);
  const l = o.model.step(ids, o.model.newCache(ids.length), 'all');
  process.stdout.write(JSON.stringify({ logits: Array.from(l) }));
} else if (what === 'encode') {
  process.stdout.write(JSON.stringify(o.tokenizer.encode(arg, { bos: true })));
} else {
  process.stdout.write(JSON.stringify(JSON.parse(arg).map((d) => renderDialog(o.tokenizer, d).ids)));
}
"""


def llama2(directory, what, arg):
    r = subprocess.run(["node", "--input-type=module", "-e", NODE, directory, what, arg], capture_output=True, text=True,
                       env={**os.environ, "LLAMA2_ROOT": ROOT}, check=False)
    if r.returncode != 0:
        raise SystemExit(f"llama2 ({what}) failed: {r.stderr.strip()[-500:]}")
    return json.loads(r.stdout)


def chat_ids(template, tc, sp, dialog):
    """apply_chat_template(tokenize=True) as transformers' LlamaTokenizer (legacy) computes it."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    text = env.from_string(template).render(messages=dialog, bos_token=tc["bos_token"], eos_token=tc["eos_token"])
    specials = {tc["bos_token"]: sp.bos_id(), tc["eos_token"]: sp.eos_id()}
    ids, i, cur = [], 0, ""
    while i < len(text):
        tok = next((s for s in specials if text.startswith(s, i)), None)
        if tok is None:
            cur += text[i]
            i += 1
            continue
        if cur:
            ids += sp.encode(cur)
        cur = ""
        ids.append(specials[tok])
        i += len(tok)
    if cur:
        ids += sp.encode(cur)
    return ids


def main():
    d = sys.argv[1]
    cfg = json.load(open(os.path.join(d, "config.json")))
    out = {"dir": d}
    ok = True
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(d, "tokenizer.model"))
    ids = [sp.bos_id()] + sp.encode(TEXT)
    ours = llama2(d, "encode", TEXT)
    out["tokenizer_identical"] = ids == ours
    ok &= ids == ours

    w = read_safetensors(os.path.join(d, "model.safetensors"))
    with torch.no_grad():
        ref = hf_logits(cfg, w, ids).numpy()
    got = np.array(llama2(d, "logits", json.dumps(ids))["logits"], dtype=np.float32).reshape(ref.shape)
    diff = float(np.abs(ref - got).max())
    scale = float(np.abs(ref).max())
    out.update(tokens=len(ids), logits_max_abs_diff=diff, logits_max_abs=scale, logits_rel=diff / scale,
               greedy_identical=bool((ref.argmax(-1) == got.argmax(-1)).all()))
    ok &= diff / scale < LOGIT_REL_TOL

    tc = json.load(open(os.path.join(d, "tokenizer_config.json")))
    try:
        import jinja2  # noqa: F401
        want = llama2(d, "chat", json.dumps(DIALOGS))
        got_chat = [chat_ids(tc["chat_template"], tc, sp, dlg) for dlg in DIALOGS]
        out["chat_template_identical"] = got_chat == want
        ok &= got_chat == want
    except ImportError:
        out["chat_template_identical"] = None  # python3-jinja2 not installed
    out["ok"] = bool(ok)
    print(json.dumps(out))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
