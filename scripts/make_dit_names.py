#!/usr/bin/env python3
"""Writes test/fixtures/dit_s2_names.json: every state-dict name and shape of DiT-S/2 (facebookresearch/DiT
models.py: hidden 384, depth 12, 6 heads, patch 2) on 32x32x4 inputs with 1000 classes and learn_sigma,
taken from the re-written reference module of scripts/make_dit_golden.py (whose state dict loads strictly
into the reference DiT). The TypeScript DiT built with the same options must have exactly these names and
shapes (pos_embed included: it is in the reference's state dict).

Run from anywhere: /usr/bin/python3 scripts/make_dit_names.py (needs python3-torch, numpy).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_dit_golden import DiT  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "dit_s2_names.json")
CONFIG = {
    "input_size": 32,
    "patch_size": 2,
    "in_channels": 4,
    "hidden_size": 384,
    "depth": 12,
    "num_heads": 6,
    "mlp_ratio": 4.0,
    "class_dropout_prob": 0.1,
    "num_classes": 1000,
    "learn_sigma": True,
}

if __name__ == "__main__":
    m = DiT(CONFIG)
    names = [[k, list(v.shape)] for k, v in m.state_dict().items()]
    trainable = sum(p.numel() for p in m.parameters() if p.requires_grad)
    with open(OUT, "w") as f:
        json.dump({"source": "scripts/make_dit_names.py", "config": CONFIG, "trainable": trainable, "state": names}, f)
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)}: {len(names)} tensors, {trainable} trainable parameters")
