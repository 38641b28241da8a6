#!/usr/bin/python3
"""The PyTorch side of tools/bench/bench_step.sh: one training step (forward, backward, AdamW) of the model
that `bench_step --model M --describe` prints as JSON, built with make_fixture.py's literal model (LaS
with the L x L matrices), on the same batch shape, lengths and decay rates; median step time.

    bench_step --model smnist --describe > m.json
    /usr/bin/python3 tests/reference/bench_torch.py m.json THREADS STEPS    -> "step_ms=123.4"
"""
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixture as mf  # noqa: E402


def main():
    desc_path, threads, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open(desc_path) as f:
        d = json.load(f)
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    w = {n: t.requires_grad_() for n, t in mf.init_weights(d, gen).items()}
    B, L = d["batch"], d["L"]
    valid = torch.arange(L)[None, :] < torch.tensor(d["lengths"])[:, None]
    if d["pixels"]:
        x = torch.rand(B, L, generator=gen) * valid
    else:
        x = torch.randint(1, d["vocab"], (B, L), generator=gen) * valid
    y = torch.randint(0, d["classes"], (B,), generator=gen)
    # lasgrad's Adam takes no weight decay on the parameters named by the no_decay setting.
    exempt = lambda n: any(s in n for s in d["no_decay"])
    decay = [t for n, t in w.items() if not exempt(n)]
    rest = [t for n, t in w.items() if exempt(n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": d["weight_decay"]}, {"params": rest, "weight_decay": 0.0}],
                            lr=d["lr"])

    def step():
        loss = F.cross_entropy(mf.forward(d, d["attention"], w, x, d["lengths"]), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(f"step_ms={statistics.median(times) * 1e3:.1f}")


if __name__ == "__main__":
    main()
