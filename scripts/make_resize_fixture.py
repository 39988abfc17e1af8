#!/usr/bin/env python3
"""Writes test/fixtures/resize_bilinear.safetensors for test/feature-model.test.ts: random images
x [2, 3, 5, 7] and PyTorch's F.interpolate(x, size, mode='bilinear', align_corners=False,
antialias=False) of them at several sizes (up, down, mixed, 1x1, unchanged), as 'x' and 'out_HxW'
(float64 inputs, so only our float32 arithmetic differs). Run: /usr/bin/python3 scripts/make_resize_fixture.py
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

from fixture_io import save_safetensors

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'resize_bilinear.safetensors')
SIZES = [(11, 13), (3, 4), (10, 3), (1, 1), (5, 7), (32, 29)]


def main():
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, size=(2, 3, 5, 7)).astype(np.float32)
    tensors = {'x': x}
    for h, w in SIZES:
        y = F.interpolate(torch.from_numpy(x).double(), size=(h, w), mode='bilinear', align_corners=False, antialias=False)
        tensors[f'out_{h}x{w}'] = y.numpy().astype(np.float32)
    save_safetensors(OUT, tensors, {'torch': torch.__version__, 'script': 'scripts/make_resize_fixture.py'})
    print(f'wrote {OUT}')


if __name__ == '__main__':
    main()
