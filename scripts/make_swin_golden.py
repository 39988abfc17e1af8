#!/usr/bin/env python3
"""Writes test/fixtures/swin_golden.safetensors: golden values of torchvision's SwinTransformer (v1
blocks, swin_t's structure: 4 stages, patch 4, window 7, MLP ratio 4) at a tiny width, one forward
and backward at each of three input sizes. It does not cover Swin v2, pretrained weights or dropout.

Model (torchvision.models.swin_transformer.SwinTransformer, used as it is: it IS the reference):
  patch [4, 4], embed_dim 4, depths [2, 2, 2, 2], heads [1, 2, 2, 4] (head dims 4, 4, 8, 8),
  window [7, 7], 10 classes, dropout = attention dropout = stochastic depth = 0, so the training-mode
  forward equals the eval-mode one (checked below). Every parameter is set to seeded random,
  non-default values: Linear/Conv weights N(0, 1/fan_in), biases N(0, 0.1^2), LayerNorm weight
  1 + N(0, 0.3^2) and bias N(0, 0.2^2), relative_position_bias_table N(0, 0.5^2).

What the three sizes exercise (torchvision 0.14's rule, which differs from the original Swin code: a
window is never shrunk; the map is zero-padded on the bottom/right to a multiple of the window, the
padded tokens take part in attention unmasked, and the shift is set to 0 only when the window covers
the whole padded side):
  32x32: stage maps 8, 4, 2, 1 -> stage 1 padded to 14 with the shift (3) and its mask active;
         stages 2-4 padded to 7, no shift
  64x64: maps 16, 8, 4, 2 -> stages 1-2 padded (21, 14) with shift and mask; stages 3-4 no shift
  40x40: maps 10, 5, 3, 2 -> patch merging pads odd maps (5 -> 6, 3 -> 4) before taking neighbours
The per-case map/padding/shift table is in the metadata ("cases").

Contents (names exactly as torch's state_dict):
  <name>                        every parameter and buffer (relative_position_index as I64)
  case<S>.input.x               [B, 3, S, S] F32 input batch: S = 32 (B 2), 64 (B 1), 40 (B 2)
  case<S>.input.y               [B] I64 labels
  case<S>.out.logits            [B, 10]
  case<S>.out.loss              [] mean cross-entropy
  case<S>.grad.input.x          d loss / d x
  case<S>.grad.<param>          d loss / d param, every parameter (cases 32 and 64 only: to keep the
                                file under 1 MB the 40x40 case, which adds the odd-size merges, has
                                logits, loss and the input gradient, which flows through every layer)
Golden values are computed in float64 on the float32-rounded state and inputs, stored as F32; the f32
PyTorch run's distance to them is in the metadata (torch_f32_vs_f64).

How the TypeScript golden test should use it: build a Swin with the metadata's "config", load the
state dict under torch's names (non-strict, the file also holds the case<S>.* entries; no other name
may be missing or unexpected), then per case: training-mode forward of input.x (channels-last inside,
NCHW input), mean CE against input.y, backward; compare logits, loss, every parameter gradient and
the input gradient (whichever the case holds) with max|a-b|/max|b| <= 1e-4 per tensor. Also check that relative_position_index
as the TS model builds it equals the file's (exact).

Run from anywhere: /usr/bin/python3 scripts/make_swin_golden.py (needs python3-torch, torchvision).
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.swin_transformer import ShiftedWindowAttention, SwinTransformer

from fixture_io import np_of, rel_err, save_safetensors, worst

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "swin_golden.safetensors")
CONFIG = {
    "patch_size": [4, 4],
    "embed_dim": 4,
    "depths": [2, 2, 2, 2],
    "num_heads": [1, 2, 2, 4],
    "window_size": [7, 7],
    "mlp_ratio": 4.0,
    "num_classes": 10,
}
# (input side, batch, store parameter gradients)
CASES = [(32, 2, True), (64, 1, True), (40, 2, False)]


def make_model():
    return SwinTransformer(
        patch_size=CONFIG["patch_size"],
        embed_dim=CONFIG["embed_dim"],
        depths=CONFIG["depths"],
        num_heads=CONFIG["num_heads"],
        window_size=CONFIG["window_size"],
        mlp_ratio=CONFIG["mlp_ratio"],
        dropout=0.0,
        attention_dropout=0.0,
        stochastic_depth_prob=0.0,
        num_classes=CONFIG["num_classes"],
    )


def perturb(model, g):
    """Seeded random values for every parameter (see the module docstring)."""
    rn = lambda *s: torch.randn(*s, generator=g)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(rn(*m.weight.shape) / fan_in**0.5)
                if m.bias is not None:
                    m.bias.copy_(0.1 * rn(*m.bias.shape))
            elif isinstance(m, nn.LayerNorm):
                m.weight.copy_(1 + 0.3 * rn(*m.weight.shape))
                m.bias.copy_(0.2 * rn(*m.bias.shape))
            elif isinstance(m, ShiftedWindowAttention):
                m.relative_position_bias_table.copy_(0.5 * rn(*m.relative_position_bias_table.shape))
    touched = {id(p) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.LayerNorm)) for p in m.parameters(recurse=False)}
    touched |= {id(m.relative_position_bias_table) for m in model.modules() if isinstance(m, ShiftedWindowAttention)}
    left = [n for n, p in model.named_parameters() if id(p) not in touched]
    assert not left, f"parameters without random values: {left}"


def stage_table(size):
    """Per stage: map side, padded side, windows per side, effective shift; and merge padding."""
    win = CONFIG["window_size"][0]
    side = size // CONFIG["patch_size"][0]
    rows = []
    for i, _ in enumerate(CONFIG["depths"]):
        padded = side + (-side) % win
        rows.append({"stage": i + 1, "map": side, "padded": padded, "windows_per_side": padded // win, "shift": 0 if win >= padded else win // 2})
        if i < len(CONFIG["depths"]) - 1:
            rows[-1]["merge_pad"] = side % 2
            side = (side + side % 2) // 2
    return rows


def step(model, x, y):
    """Training-mode forward, mean CE, backward: logits, loss, parameter grads, input grad."""
    model.train()
    model.zero_grad()
    x = x.clone().requires_grad_(True)
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    return logits.detach(), loss.detach(), grads, x.grad.detach().clone()


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1234)
    m32 = make_model()
    perturb(m32, g)
    state = {k: v.clone() for k, v in m32.state_dict().items()}
    m64 = make_model()
    m64.load_state_dict(state)
    m64 = m64.double()

    out = {k: np_of(v) for k, v in state.items()}
    notes, cases = {}, {}
    for S, B, with_grads in CASES:
        x = torch.randn(B, 3, S, S, generator=g)
        y = torch.randint(0, CONFIG["num_classes"], (B,), generator=g)
        lg, ls, gr, gx = step(m64, x.double(), y)
        lg32, ls32, gr32, gx32 = step(m32, x, y)
        with torch.no_grad():  # no dropout or stochastic depth: eval mode gives the same logits
            m64.eval()
            assert rel_err(m64(x.double()), lg) < 1e-12
        w = worst({n: (gr32[n], gr[n]) for n in gr})
        notes[f"case{S}"] = f"logits {rel_err(lg32, lg):.2e}, loss {rel_err(ls32, ls):.2e}, input grad {rel_err(gx32, gx):.2e}, worst grad {w[0]:.2e} ({w[1]})"
        print(f"{S}x{S}: loss {float(ls):.6f}; torch f32 vs f64: {notes[f'case{S}']}")
        p = f"case{S}."
        out[p + "input.x"] = np_of(x)
        out[p + "input.y"] = np_of(y)
        out[p + "out.logits"] = np_of(lg)
        out[p + "out.loss"] = np_of(ls)
        out[p + "grad.input.x"] = np_of(gx)
        if with_grads:
            for n, t in gr.items():
                out[p + "grad." + n] = np_of(t)
        cases[f"case{S}"] = {"input": [B, 3, S, S], "parameter_grads": with_grads, "stages": stage_table(S)}

    meta = {
        "source": "scripts/make_swin_golden.py",
        "torch": torch.__version__,
        "model": "torchvision SwinTransformer (v1), train mode, no dropout / stochastic depth",
        "config": json.dumps(CONFIG),
        "cases": json.dumps(cases),
        "precision": "forward/backward in float64 on the f32 state, stored as F32",
        "torch_f32_vs_f64": json.dumps(notes),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_safetensors(OUT, out, meta)
    params = sum(v.numel() for v in m32.parameters())
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes, {len(out)} tensors, {params} parameters)")


if __name__ == "__main__":
    main()
