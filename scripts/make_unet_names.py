#!/usr/bin/env python3
"""Writes test/fixtures/unet_cifar10_names.json: every state-dict name and shape of the authors'
class-conditional DDPM UNet in its CIFAR-10 configuration (DDPM/configs/cifar10_*.yml: ch 128,
ch_mult [1, 2, 2, 2], num_res_blocks 2, attn_resolutions [16], 32x32, 10 classes), taken from the
re-written reference module of scripts/make_unet_golden.py (whose state dict loads strictly into the
authors' Conditional_Model; at ch 128 its temb_cemb_proj width 8ch equals the reference's 4ch + 512).
The TypeScript UNet built with the same options must have exactly these names and shapes.

Run from anywhere: /usr/bin/python3 scripts/make_unet_names.py (needs python3-torch).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_unet_golden import ConditionalUNet  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "unet_cifar10_names.json")
CONFIG = {
    "ch": 128,
    "num_groups": 32,
    "out_ch": 3,
    "ch_mult": [1, 2, 2, 2],
    "num_res_blocks": 2,
    "attn_resolutions": [16],
    "dropout": 0.1,
    "in_channels": 3,
    "resolution": 32,
    "n_classes": 10,
    "num_timesteps": 1000,
}

if __name__ == "__main__":
    m = ConditionalUNet(CONFIG)
    names = [[k, list(v.shape)] for k, v in m.state_dict().items()]
    with open(OUT, "w") as f:
        json.dump({"source": "scripts/make_unet_names.py", "config": CONFIG, "parameters": sum(p.numel() for p in m.parameters()), "state": names}, f)
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)}: {len(names)} tensors, {sum(p.numel() for p in m.parameters())} parameters")
