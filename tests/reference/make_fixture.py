#!/usr/bin/python3
"""Builds the small sequence classifier of models/model.h in PyTorch, with LaS written literally as in
docs/las-attention.md §1 and §3, and writes, per attention kind, a safetensors fixture:
inputs, weights (float32, lasgrad's parameter names), logits, loss and every parameter's gradient
(float64: PyTorch computes in float64 from the float32 weights). tests/models/test_reference.cpp loads
each one and checks lasgrad's forward and backward against it. Every tensor the model makes (decay
matrices, masks, lengths, the position table) is made on its inputs' device, so tools/bench/bench_cuda.sh
runs the same code on a GPU, eager and under torch.compile.

Run by hand (Debian's python3-torch; no safetensors package needed):
    /usr/bin/python3 tests/reference/make_fixture.py
"""
import functools
import json
import math
import os
import struct

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))

# The fixture model; the same values go into the file's metadata, which the C++ test reads back.
CONFIG = dict(vocab=11, classes=3, d_model=16, heads=4, layers=2, expand=2, L=37, batch=3,
              lengths=[37, 20, 5], las_b=0.3, pool=5, chunk=16, pre_norm=1, causal=1)


def las_alphas(kind, heads, b, max_len):
    """Head 0 global; heads 1..H-1 geometric from 1/max_len to B (layers/multihead_attention.cpp)."""
    if kind == "softmax":
        return [0.0] * heads
    lo, n = 1.0 / max_len, heads - 1
    return [0.0] + [b if n == 1 else lo * (b / lo) ** ((h - 1) / (n - 1)) for h in range(1, heads)]


def las_head_block(q, k, v, alpha, pool, causal, valid):
    """One group of sequences of length n, literally: q, k, v [..., n, dh]; valid [..., n] bool keys."""
    n, dh = q.shape[-2], q.shape[-1]
    s = q @ k.transpose(-1, -2) / math.sqrt(dh)                          # 1. S = Q K^T / sqrt(dh)
    i = torch.arange(n, dtype=q.dtype, device=q.device)
    e = torch.exp(-alpha * (i[:, None] - i[None, :]).abs())              # E[i, j] = exp(-alpha |i - j|)
    s = s * e                                                            # 2. multiplicative decay
    mask = ~valid[..., None, :]
    if causal:
        mask = mask | torch.triu(torch.ones(n, n, dtype=torch.bool, device=q.device), 1)
    s = s.masked_fill(mask, float("-inf"))                               # 3. causal mask (+ key padding)
    a = torch.softmax(s, dim=-1)                                         # 4. softmax per row
    a = torch.nan_to_num(a, nan=0.0)                                     # rows without a valid key -> 0
    if pool > 1:                                                         # 5. avg-pool each row
        shape = a.shape
        a = F.avg_pool1d(a.reshape(-1, 1, n), pool, 1, pool // 2, count_include_pad=True).reshape(shape)
    a = a * valid[..., None, :].to(a.dtype)                              # padded keys: no weight
    return a @ v                                                         # 6. O = A V


def attention(q, k, v, alphas, kind, pool, chunk, causal, lengths):
    """q, k, v [B, H, L, dh] -> [B, H, L, dh]; LaS-Chunk runs LaS inside chunks of `chunk` positions."""
    B, H, L, dh = q.shape
    C = chunk if kind == "las-chunk" else L
    P = 1 if kind == "softmax" else pool
    n = (L + C - 1) // C
    pad = n * C - L
    valid = torch.arange(n * C, device=q.device)[None, :] < torch.tensor(lengths, device=q.device)[:, None]   # [B, n*C]
    def chunks(x):
        return F.pad(x, (0, 0, 0, pad)).reshape(B, H, n, C, dh)
    out = torch.empty(B, H, n, C, dh, dtype=q.dtype, device=q.device)
    for h in range(H):
        out[:, h] = las_head_block(chunks(q)[:, h], chunks(k)[:, h], chunks(v)[:, h], alphas[h], P, causal,
                                   valid.reshape(B, n, C))
    return out.reshape(B, H, n * C, dh)[:, :, :L]


@functools.lru_cache(maxsize=None)
def sinusoidal(L, d):
    pe = torch.zeros(L, d, dtype=torch.float64)
    for p in range(L):
        for i in range(d):
            angle = p / 10000.0 ** ((i // 2 * 2) / d)
            pe[p, i] = math.sin(angle) if i % 2 == 0 else math.cos(angle)
    return pe


def init_weights(c, gen):
    """Random float32 weights under lasgrad's names (values differ from lasgrad's init: they are loaded)."""
    d, e = c["d_model"], c["expand"] * c["d_model"]
    w = {}
    def lin(name, i, o):
        w[name + ".weight"] = (torch.rand(o, i, generator=gen) * 2 - 1) / math.sqrt(i)
        w[name + ".bias"] = (torch.rand(o, generator=gen) * 2 - 1) / math.sqrt(i)
    if c.get("pixels"):  # pixel values: Linear 1 -> d
        lin("encoder.embed", 1, d)
    else:
        w["encoder.embed.weight"] = torch.randn(c["vocab"], d, generator=gen)
    def norm(name):
        w[name + ".weight"] = 1 + 0.1 * torch.randn(d, generator=gen)
        w[name + ".bias"] = 0.1 * torch.randn(d, generator=gen)
    for b in range(c["layers"]):
        p = f"encoder.blocks.{b}."
        norm(p + "norm1")
        lin(p + "attn.qkv", d, 3 * d)
        lin(p + "attn.out", d, d)
        norm(p + "norm2")
        lin(p + "ffn.fc1", d, e)
        lin(p + "ffn.fc2", e, d)
    norm("encoder.norm")
    lin("head", d, c["classes"])
    return w


def forward(c, kind, w, x, lengths):
    """Pre-LayerNorm classifier, as models/model.cpp builds it. Optional keys of c: "pixels" (x holds
    pixel values, embedded by a Linear 1 -> d), "alphas" (each layer's decay rates, instead of
    las_alphas from "las_b"), "dropout" (training-mode dropout where models/model.cpp applies it)."""
    B, L, d, H = x.shape[0], x.shape[1], c["d_model"], c["heads"]
    alphas = c.get("alphas") or [las_alphas(kind, H, c["las_b"], L)] * c["layers"]
    drop = lambda t: F.dropout(t, c.get("dropout", 0.0)) if c.get("dropout", 0.0) > 0 else t
    lin = lambda t, n: t @ w[n + ".weight"].T + w[n + ".bias"]
    ln = lambda t, n: F.layer_norm(t, (d,), w[n + ".weight"], w[n + ".bias"], 1e-5)
    dtype = w["encoder.embed.weight"].dtype
    h = lin(x[..., None].to(dtype), "encoder.embed") if c.get("pixels") else w["encoder.embed.weight"][x]
    h = drop(h + sinusoidal(L, d).to(device=h.device, dtype=dtype))
    for b in range(c["layers"]):
        p = f"encoder.blocks.{b}."
        t = lin(ln(h, p + "norm1"), p + "attn.qkv").reshape(B, L, 3, H, d // H).permute(2, 0, 3, 1, 4)
        a = attention(t[0], t[1], t[2], alphas[b], kind, c["pool"], c["chunk"], c["causal"], lengths)
        h = h + drop(lin(a.permute(0, 2, 1, 3).reshape(B, L, d), p + "attn.out"))
        h = h + drop(lin(F.gelu(lin(ln(h, p + "norm2"), p + "ffn.fc1")), p + "ffn.fc2"))
    h = ln(h, "encoder.norm")
    n = torch.tensor(lengths, device=h.device)
    valid = (torch.arange(L, device=h.device)[None, :] < n[:, None]).to(h.dtype)
    pooled = (h * valid[..., None]).sum(1) / n.to(h.dtype)[:, None]
    return lin(pooled, "head")


def save_safetensors(path, tensors, metadata):
    """The safetensors layout by hand: u64 header length, JSON header, raw little-endian data."""
    codes = {torch.float32: "F32", torch.float64: "F64", torch.int32: "I32"}
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().numpy().tobytes()
        header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode())
        for b in blobs:
            f.write(b)


def main():
    c = CONFIG
    for seed, kind in enumerate(["softmax", "las", "las-chunk"]):
        gen = torch.Generator().manual_seed(100 + seed)
        w32 = init_weights(c, gen)
        x = torch.randint(0, c["vocab"], (c["batch"], c["L"]), generator=gen, dtype=torch.int32)
        labels = torch.randint(0, c["classes"], (c["batch"],), generator=gen, dtype=torch.int32)
        w64 = {n: t.double().requires_grad_() for n, t in w32.items()}
        logits = forward(c, kind, w64, x.long(), c["lengths"])
        loss = F.cross_entropy(logits, labels.long())
        loss.backward()
        tensors = {"input.x": x, "input.lengths": torch.tensor(c["lengths"], dtype=torch.int32),
                   "input.labels": labels, "out.logits": logits.detach(), "out.loss": loss.detach()}
        tensors.update({"param." + n: t for n, t in w32.items()})
        tensors.update({"grad." + n: t.grad for n, t in w64.items()})
        meta = {k: str(v) for k, v in c.items() if k != "lengths"}
        meta["kind"] = kind
        meta["torch"] = torch.__version__
        path = os.path.join(HERE, f"classifier_{kind}.safetensors")
        save_safetensors(path, tensors, meta)
        print(f"{path}: {os.path.getsize(path)} bytes, loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
