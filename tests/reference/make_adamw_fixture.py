#!/usr/bin/python3
"""Writes adamw_fixture.safetensors: a few torch.optim.AdamW and Adam steps on a small problem, for
tests/train/test_optim.cpp. Run with Debian's python3 (torch 1.13): /usr/bin/python3 make_adamw_fixture.py

Three parameters named like a model's ("proj.weight", "proj.bias", "embed.weight"); weight decay is off
for names containing "bias" or "embed" (the trainer's default rule). Each step: a loss on fresh data,
backward, clip_grad_norm_(max_norm), then the optimizer step at that step's learning rate. The file holds,
per optimizer O in {adamw, adam}: O.init.<p>, and for each step t: O.grad.<t>.<p> (before clipping) and
O.after.<t>.<p>. The settings are in __metadata__. safetensors is written by hand (struct + json)."""
import json
import struct

import torch

STEPS = 4
LRS = [1e-2, 2e-2, 1.5e-2, 5e-3]
SETTINGS = dict(betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1, max_norm=0.5)


def run(opt_class, tensors, prefix):
    torch.manual_seed(0)
    params = {
        "proj.weight": torch.randn(4, 3),
        "proj.bias": torch.randn(3),
        "embed.weight": torch.randn(5, 4),
    }
    for p in params.values():
        p.requires_grad_(True)
    decay = [p for n, p in params.items() if "bias" not in n and "embed" not in n]
    no_decay = [p for n, p in params.items() if "bias" in n or "embed" in n]
    opt = opt_class([{"params": decay, "weight_decay": SETTINGS["weight_decay"]},
                     {"params": no_decay, "weight_decay": 0.0}],
                    lr=LRS[0], betas=SETTINGS["betas"], eps=SETTINGS["eps"])
    for n, p in params.items():
        tensors[f"{prefix}.init.{n}"] = p.detach().clone()
    g = torch.Generator().manual_seed(1)
    for t in range(1, STEPS + 1):
        ids = torch.randint(0, 5, (6,), generator=g)
        y = torch.randn(6, 3, generator=g)
        x = params["embed.weight"][ids]
        out = torch.tanh(x @ params["proj.weight"] + params["proj.bias"])
        loss = ((out - y) ** 2).mean() * 5.0
        opt.zero_grad()
        loss.backward()
        for n, p in params.items():
            tensors[f"{prefix}.grad.{t}.{n}"] = p.grad.detach().clone()
        torch.nn.utils.clip_grad_norm_(list(params.values()), SETTINGS["max_norm"])
        for group in opt.param_groups:
            group["lr"] = LRS[t - 1]
        opt.step()
        for n, p in params.items():
            tensors[f"{prefix}.after.{t}.{n}"] = p.detach().clone()


def save(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


tensors = {}
run(torch.optim.AdamW, tensors, "adamw")
run(torch.optim.Adam, tensors, "adam")
save("adamw_fixture.safetensors", tensors, {
    "steps": str(STEPS), "lrs": ",".join(repr(x) for x in LRS), "beta1": "0.9", "beta2": "0.98",
    "eps": "1e-06", "weight_decay": "0.1", "max_norm": "0.5", "torch": torch.__version__})
print("wrote adamw_fixture.safetensors:", len(tensors), "tensors")
