#!/usr/bin/python3
"""Compares a run of one process (ONE) with a data-parallel run of the same global batch (TWO):
every train step's loss within 1e-5 relative, the validation lines alike, the checkpoint of TWO
recording its ranks, and every parameter and buffer (BatchNorm's running statistics) of
last.safetensors within 1e-5 (absolute, plus relative).
    check_mpi.py ONE TWO"""
import json
import struct
import sys


def metrics(run):
    with open(f"{run}/metrics.jsonl") as f:
        return [json.loads(line) for line in f]


def safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            continue
        a, b = t["data_offsets"]
        tensors[name] = struct.unpack(f"<{(b - a) // 4}f", data[a:b])
    return meta, tensors


def main():
    one, two = sys.argv[1], sys.argv[2]
    m1, m2 = metrics(one), metrics(two)
    t1 = [m for m in m1 if m["split"] == "train"]
    t2 = [m for m in m2 if m["split"] == "train"]
    assert len(t1) == len(t2) == 20, f"train lines: {len(t1)} and {len(t2)}"
    for a, b in zip(t1, t2):
        assert a["step"] == b["step"]
        rel = abs(a["loss"] - b["loss"]) / max(abs(a["loss"]), 1e-12)
        assert rel < 1e-5, f"step {a['step']}: loss {a['loss']} (1 process) against {b['loss']} (2 ranks)"
        assert a["accuracy"] == b["accuracy"], f"step {a['step']}: accuracy {a['accuracy']} against {b['accuracy']}"
    v1 = [m for m in m1 if m["split"] != "train"]
    v2 = [m for m in m2 if m["split"] != "train"]
    assert len(v1) == len(v2) == 3, f"val/test lines: {len(v1)} and {len(v2)}"
    for a, b in zip(v1, v2):
        assert a["examples"] == b["examples"], (a, b)
        assert abs(a["loss"] - b["loss"]) <= 1e-5 * max(abs(a["loss"]), 1e-12), (a, b)
    meta1, p1 = safetensors(f"{one}/last.safetensors")
    meta2, p2 = safetensors(f"{two}/last.safetensors")
    assert meta1.get("ranks") == "1" and meta2.get("ranks") == "2", (meta1.get("ranks"), meta2.get("ranks"))
    params = [n for n in p1 if n.startswith("model.")]
    assert params and set(params) <= set(p2)
    worst, where = max((max(abs(x - y) / (1e-5 + 1e-5 * abs(x)) for x, y in zip(p1[n], p2[n])), n) for n in params)
    assert worst <= 1.0, f"{where} differs by {worst:.2f} x the tolerance 1e-5 (1 + |p|)"
    print(f"check_mpi: 20 losses within 1e-5, parameters within {worst:.3f} x 1e-5 (1 + |p|) (worst: {where})")


if __name__ == "__main__":
    main()
