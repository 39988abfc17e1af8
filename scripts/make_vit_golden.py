#!/usr/bin/env python3
"""Writes test/fixtures/vit_golden.safetensors: golden values of torchvision's VisionTransformer
(vit_b_16's module names) at two tiny configurations, one training-mode forward and backward each.
It does not cover the conv-stem variant, representation_size (pre_logits) or dropout.

Models (torchvision.models.vision_transformer.VisionTransformer, used as it is: it IS the reference),
dropout = attention dropout = 0, so the training-mode forward equals the eval-mode one:
  vit32: image 32, patch 8  (16 patches + class token), hidden 16, 2 heads, 2 layers, MLP 64, 10 classes
  vit48: image 48, patch 16 (9 patches + class token),  hidden 24, 4 heads, 2 layers, MLP 40, 10 classes
         (an MLP width that is not 4x hidden, so it must come from the config)
Every parameter gets seeded random, non-default values (torchvision starts class_token and
heads.head at zero): Linear/Conv weights N(0, 1/fan_in), biases N(0, 0.1^2), LayerNorm weight
1 + N(0, 0.3^2), bias N(0, 0.2^2), class_token N(0, 1), pos_embedding N(0, 0.5^2);
nn.MultiheadAttention's packed in_proj_weight [3D, D] (q, k, v rows in that order) and in_proj_bias
likewise. LayerNorm eps is 1e-6 here (torchvision's ViT default), not 1e-5.

Contents, per configuration prefix P in (vit32, vit48):
  P.<name>            every state-dict entry under torch's own name, e.g. P.conv_proj.weight,
                      P.class_token, P.encoder.pos_embedding, P.encoder.layers.encoder_layer_0.ln_1.weight,
                      ...self_attention.in_proj_weight / in_proj_bias / out_proj.weight / out_proj.bias,
                      ...mlp.0.weight, ...mlp.3.weight, P.encoder.ln.weight, P.heads.head.weight
  P.input.x           [2, 3, S, S] F32, P.input.y [2] I64
  P.out.logits        [2, 10], P.out.loss [] (mean cross-entropy)
  P.grad.<param>      d loss / d param for every parameter, P.grad.input.x d loss / d x
Golden values are float64 runs on the float32-rounded state and inputs, stored as F32; the f32 PyTorch
run's distance is in the metadata (torch_f32_vs_f64). Each configuration is in the metadata ("configs").

How the TypeScript golden test should use it: for each prefix, build the ViT from the metadata's
config, load the entries whose names start with "P." with the prefix stripped (strict: exactly the
model's state dict, none missing or left over among the non-input/out/grad names), training-mode
forward, mean CE, backward; compare logits, loss, every parameter gradient and the input gradient with
max|a-b|/max|b| <= 1e-4 per tensor.

Run from anywhere: /usr/bin/python3 scripts/make_vit_golden.py (needs python3-torch, torchvision).
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.vision_transformer import VisionTransformer

from fixture_io import np_of, rel_err, save_safetensors, worst

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "vit_golden.safetensors")
CONFIGS = {
    "vit32": {"image_size": 32, "patch_size": 8, "num_layers": 2, "num_heads": 2, "hidden_dim": 16, "mlp_dim": 64, "num_classes": 10},
    "vit48": {"image_size": 48, "patch_size": 16, "num_layers": 2, "num_heads": 4, "hidden_dim": 24, "mlp_dim": 40, "num_classes": 10},
}
N = 2


def perturb(model, g):
    """Seeded random values for every parameter (see the module docstring)."""
    rn = lambda *s: torch.randn(*s, generator=g)
    done = set()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.copy_(rn(*m.weight.shape) / m.weight[0].numel() ** 0.5)
                m.bias.copy_(0.1 * rn(*m.bias.shape))
                done |= {id(m.weight), id(m.bias)}
            elif isinstance(m, nn.LayerNorm):
                m.weight.copy_(1 + 0.3 * rn(*m.weight.shape))
                m.bias.copy_(0.2 * rn(*m.bias.shape))
                done |= {id(m.weight), id(m.bias)}
            elif isinstance(m, nn.MultiheadAttention):
                m.in_proj_weight.copy_(rn(*m.in_proj_weight.shape) / m.embed_dim**0.5)
                m.in_proj_bias.copy_(0.1 * rn(*m.in_proj_bias.shape))
                done |= {id(m.in_proj_weight), id(m.in_proj_bias)}
        model.class_token.copy_(rn(*model.class_token.shape))
        model.encoder.pos_embedding.copy_(0.5 * rn(*model.encoder.pos_embedding.shape))
        done |= {id(model.class_token), id(model.encoder.pos_embedding)}
    left = [n for n, p in model.named_parameters() if id(p) not in done]
    assert not left, f"parameters without random values: {left}"


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
    g = torch.Generator().manual_seed(4321)
    out, notes = {}, {}
    for prefix, cfg in CONFIGS.items():
        m32 = VisionTransformer(**cfg, dropout=0.0, attention_dropout=0.0)
        perturb(m32, g)
        state = {k: v.clone() for k, v in m32.state_dict().items()}
        m64 = VisionTransformer(**cfg, dropout=0.0, attention_dropout=0.0)
        m64.load_state_dict(state)
        m64 = m64.double()
        S = cfg["image_size"]
        x = torch.randn(N, 3, S, S, generator=g)
        y = torch.randint(0, cfg["num_classes"], (N,), generator=g)
        lg, ls, gr, gx = step(m64, x.double(), y)
        lg32, ls32, gr32, gx32 = step(m32, x, y)
        with torch.no_grad():  # no dropout: the eval-mode forward gives the same logits
            m64.eval()
            assert rel_err(m64(x.double()), lg) < 1e-12
        w = worst({n: (gr32[n], gr[n]) for n in gr})
        notes[prefix] = f"logits {rel_err(lg32, lg):.2e}, loss {rel_err(ls32, ls):.2e}, input grad {rel_err(gx32, gx):.2e}, worst grad {w[0]:.2e} ({w[1]})"
        print(f"{prefix}: loss {float(ls):.6f}; torch f32 vs f64: {notes[prefix]}")
        p = prefix + "."
        for k, v in state.items():
            out[p + k] = np_of(v)
        out[p + "input.x"] = np_of(x)
        out[p + "input.y"] = np_of(y)
        out[p + "out.logits"] = np_of(lg)
        out[p + "out.loss"] = np_of(ls)
        out[p + "grad.input.x"] = np_of(gx)
        for n, t in gr.items():
            out[p + "grad." + n] = np_of(t)

    meta = {
        "source": "scripts/make_vit_golden.py",
        "torch": torch.__version__,
        "model": "torchvision VisionTransformer, train mode, no dropout",
        "configs": json.dumps(CONFIGS),
        "precision": "forward/backward in float64 on the f32 state, stored as F32",
        "torch_f32_vs_f64": json.dumps(notes),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_safetensors(OUT, out, meta)
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes, {len(out)} tensors)")


if __name__ == "__main__":
    main()
