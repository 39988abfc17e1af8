#!/usr/bin/env python3
"""Writes test/fixtures/resnet_golden.safetensors: one PyTorch training-mode forward/backward of a
small ResNet-18 (torchvision's BasicBlock layout and module names, CIFAR stem: 3x3 stride-1 conv,
no max-pool; base width 8; 10 classes), the golden values for test/resnet-golden.test.ts.

Contents (names exactly as torch's state_dict):
  <name>            every parameter and buffer BEFORE the step (num_batches_tracked as I64)
  input.x           [4, 3, 16, 16] F32 input batch
  input.y           [4] I64 labels
  out.logits        [4, 10] logits of the training-mode forward (batch statistics)
  out.loss          [] mean cross-entropy
  grad.<param>      d loss / d param, every parameter
  after.<bn buffer> running_mean / running_var / num_batches_tracked after the forward

The state is seeded and deliberately not torchvision's default init for BatchNorm (random weight,
bias, running mean/var and a counter of 3) so the test exercises every value it loads. The forward
and backward run in float64 on the float32-rounded state and input and are stored as F32: the file
holds the exact answer for the f32 inputs, not PyTorch's own f32 rounding (the f32 run's distance
to it is printed and saved in the metadata). It does not cover eval mode or the optimizer step.

Needs PyTorch (Debian 12: python3-torch; torchvision not required: the network is scripts/torch_resnet.py).
Writes with scripts/fixture_io.py (the safetensors library's layout, no package needed).
Run from anywhere: /usr/bin/python3 scripts/make_resnet_golden.py
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from fixture_io import np_of, rel_err as rel, save_safetensors
from torch_resnet import ResNet18

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "resnet_golden.safetensors")
WIDTH, CLASSES, N, H = 8, 10, 4, 16


def build():
    torch.manual_seed(0)
    m = ResNet18(WIDTH, CLASSES)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(mod, nn.BatchNorm2d):
                c = mod.num_features
                mod.weight.copy_(1 + 0.3 * torch.randn(c))
                mod.bias.copy_(0.2 * torch.randn(c))
                mod.running_mean.copy_(0.5 * torch.randn(c))
                mod.running_var.copy_(0.5 + torch.rand(c))
                mod.num_batches_tracked.fill_(3)
    x = torch.randn(N, 3, H, H)
    y = torch.randint(0, CLASSES, (N,))
    return m, x, y


def step(m, x, y):
    """Training-mode forward, mean CE, backward. Returns logits, loss, grads (by name), buffers after."""
    m.train()
    m.zero_grad()
    logits = m(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in m.named_parameters()}
    after = {n: b.detach().clone() for n, b in m.named_buffers()}
    return logits.detach(), loss.detach(), grads, after


def main():
    m32, x, y = build()
    state = {k: v.clone() for k, v in m32.state_dict().items()}

    # float64 run on the f32-rounded state: the stored answer
    m64 = ResNet18(WIDTH, CLASSES)
    m64.load_state_dict(state)
    m64 = m64.double()
    lg64, ls64, gr64, af64 = step(m64, x.double(), y)
    # PyTorch's own f32 run, only to report how far f32 arithmetic lands from the answer
    lg32, ls32, gr32, _ = step(m32, x, y)
    worst_grad = max(((rel(gr32[n], gr64[n]), n) for n in gr64))
    f32_note = f"logits {rel(lg32, lg64):.2e}, loss {rel(ls32, ls64):.2e}, worst grad {worst_grad[0]:.2e} ({worst_grad[1]})"
    print("torch f32 vs f64 (max|a-b|/max|b|):", f32_note)

    out = {}
    for k, v in state.items():
        out[k] = np_of(v)
    out["input.x"] = np_of(x)
    out["input.y"] = np_of(y)
    out["out.logits"] = np_of(lg64)
    out["out.loss"] = np_of(ls64)
    for n, g in gr64.items():
        out[f"grad.{n}"] = np_of(g)
    for n, b in af64.items():
        out[f"after.{n}"] = np_of(b)
    meta = {
        "source": "scripts/make_resnet_golden.py",
        "torch": torch.__version__,
        "model": f"ResNet-18 BasicBlock [2,2,2,2], cifar stem, width {WIDTH}, {CLASSES} classes, train mode",
        "input": f"[{N}, 3, {H}, {H}]",
        "precision": "forward/backward in float64 on the f32 state, stored as F32",
        "torch_f32_vs_f64": f32_note,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_safetensors(OUT, out, dict(meta, writer="scripts/fixture_io.py"))
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes, {len(out)} tensors); loss {float(ls64):.6f}")


if __name__ == "__main__":
    main()
