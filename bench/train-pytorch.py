"""PyTorch baseline for `npm run bench`'s training section: tokens/s of full training steps
(forward, cross-entropy, backward, clip_grad_norm_(1.0), AdamW) of a Llama-2 model with an untied
output head, on random tokens, in float32 on the CPU.

    /usr/bin/python3 bench/train-pytorch.py --threads 2 [--dim 288 --layers 6 --heads 6 --vocab 32000
        --hidden 768 --batch 8 --seq 256 --warmup 2 --steps 4]

Prints one JSON line: {"tok_s", "ms_step", "ms_fwd", "ms_bwd", "ms_opt", "torch", "blas", "threads",
...} (medians over the timed steps; "blas" names the BLAS library torch's matmuls ran in, read from
/proc/self/maps: Debian's torch uses whatever libblas.so.3 the alternatives system points at, and the
reference BLAS there is ~30× slower than OpenBLAS). It sets the thread environment itself before importing torch,
the way ../shared/oracle/BASELINE.md measured PyTorch: Debian's torch runs matmuls in OpenBLAS
(pthreads, which ignores torch.set_num_threads) and everything else in OpenMP, so both pools get
the thread count and, above one thread, OMP_WAIT_POLICY=PASSIVE keeps idle OpenMP workers from
spinning on the cores OpenBLAS needs.

The model is written here (not imported) so the bench needs nothing outside this repository. It is
not a correctness oracle (tests/fixtures/oracle is); it only has to do the same work per step.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import time


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    for name, default in [("threads", 2), ("dim", 288), ("layers", 6), ("heads", 6), ("vocab", 32000),
                          ("hidden", 768), ("batch", 8), ("seq", 256), ("warmup", 2), ("steps", 4)]:
        p.add_argument(f"--{name}", type=int, default=default)
    return p.parse_args()


ARGS = parse()
_threads = str(ARGS.threads)
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = _threads
if ARGS.threads > 1:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
else:
    os.environ.pop("OMP_WAIT_POLICY", None)

import torch  # noqa: E402  (after the thread environment)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class Norm(nn.Module):
    """RMSNorm: x / sqrt(mean(x²) + eps) · g."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.g = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.g


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on interleaved pairs (x[2i], x[2i+1]) of x (B, T, H, HS); cos/sin (T, HS/2)."""
    a, b = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack((a * c - b * s, a * s + b * c), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.heads = heads
        self.attn_norm, self.ffn_norm = Norm(dim), Norm(dim)
        self.wq, self.wk, self.wv, self.wo = (nn.Linear(dim, dim, bias=False) for _ in range(4))
        self.w1, self.w3 = nn.Linear(dim, hidden, bias=False), nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, C = x.shape
        hs = C // self.heads
        xn = self.attn_norm(x)
        q = rotate(self.wq(xn).view(B, T, self.heads, hs), cos, sin).transpose(1, 2)  # (B, H, T, HS)
        k = rotate(self.wk(xn).view(B, T, self.heads, hs), cos, sin).transpose(1, 2)
        v = self.wv(xn).view(B, T, self.heads, hs).transpose(1, 2)
        p = F.softmax(q @ k.transpose(2, 3) / math.sqrt(hs) + mask, dim=-1)  # (B, H, T, T)
        h = x + self.wo((p @ v).transpose(1, 2).reshape(B, T, C))
        hn = self.ffn_norm(h)
        return h + self.w2(F.silu(self.w1(hn)) * self.w3(hn))


class Llama(nn.Module):
    def __init__(self, a: argparse.Namespace):
        super().__init__()
        self.emb = nn.Embedding(a.vocab, a.dim)
        self.blocks = nn.ModuleList(Block(a.dim, a.heads, a.hidden) for _ in range(a.layers))
        self.norm = Norm(a.dim)
        self.out = nn.Linear(a.dim, a.vocab, bias=False)  # untied
        hs = a.dim // a.heads
        ang = torch.arange(a.seq, dtype=torch.float64)[:, None] * (10000.0 ** (-torch.arange(0, hs, 2, dtype=torch.float64) / hs))
        self.register_buffer("cos", ang.cos().float(), persistent=False)
        self.register_buffer("sin", ang.sin().float(), persistent=False)
        self.register_buffer("mask", torch.full((a.seq, a.seq), float("-inf")).triu(1), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.emb(tokens)
        for b in self.blocks:
            x = b(x, self.cos, self.sin, self.mask)
        return self.out(self.norm(x))


def blas_in_use() -> str:
    """The BLAS library mapped into this process (after a matmul ran)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if ".so" in line}
    except OSError:
        return "unknown"
    names = sorted(os.path.basename(p) for p in libs)
    for key, label in (("openblas", "OpenBLAS"), ("mkl_", "MKL"), ("blis", "BLIS")):
        hit = [n for n in names if key in n.lower()]
        if hit:
            version = re.search(r"(\d+\.\d+(\.\d+)?)", hit[0])
            return f"{label} {version.group(1)}" if version else label
    if any("/blas/libblas.so.3" in p for p in libs):
        return "reference BLAS"
    return "unknown"


def main() -> None:
    a = ARGS
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Llama(a)
    with torch.no_grad():  # llama2.c-style init: N(0, 0.02) matrices, norm weights 1
        for p in model.parameters():
            if p.ndim >= 2:
                p.normal_(0.0, 0.02)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=3e-4, betas=(0.9, 0.95), eps=1e-8)
    torch.ones(64, 64) @ torch.ones(64, 64)  # loads the BLAS library
    blas = blas_in_use()
    warmup, steps = a.warmup, a.steps
    if blas.startswith("reference"):  # ~80 s per step: one timed step is enough to show it
        warmup, steps = 0, 1
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g)
    y = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g)
    step, fwd, bwd, upd = [], [], [], []
    loss = torch.zeros(())
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x).view(-1, a.vocab), y.view(-1))
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        t3 = time.perf_counter()
        if i >= warmup:
            step.append(t3 - t0)
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
            upd.append(t3 - t2)
    med = statistics.median(step)
    print(json.dumps({
        "tok_s": a.batch * a.seq / med, "ms_step": 1e3 * med, "ms_fwd": 1e3 * statistics.median(fwd),
        "ms_bwd": 1e3 * statistics.median(bwd), "ms_opt": 1e3 * statistics.median(upd), "loss": float(loss),
        "torch": torch.__version__, "blas": blas, "threads": a.threads, "steps": steps,
    }))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
