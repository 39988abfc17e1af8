#!/usr/bin/env python3
"""Writes test/fixtures/dit_golden.safetensors: golden values of DiT (adaLN-Zero; facebookresearch/DiT
models.py, identical to the SFR-on authors' DiT/models.py), written here from scratch with the same
state-dict names, at a tiny size in pixel space: the prediction, the classifier-free-guided prediction,
a test loss and every gradient. It does not cover the VAE, the diffusion losses or sampling.

Letters: N batch, C input channels, H W image size, p patch, T tokens (H/p * W/p), D hidden, K classes.

Details taken from the reference, and checked numerically (not part of this script): this file's state
dict loads strictly into the reference DiT (timm's PatchEmbed / Attention / Mlp stood in by minimal
equivalents, its timestep frequencies switched to float64 for the comparison), which then reproduces
out.pred, out.guided (via its forward_with_cfg), out.loss, every gradient and the input gradient to the
F32 storage rounding (<= 5e-8); its pos-embed function gives the identical table:
  - x_embedder.proj: Conv2d(C, D, k = s = p, bias); tokens = proj(x).flatten(2).transpose(1, 2), i.e.
    row-major over the (H/p, W/p) grid
  - pos_embed [1, T, D]: nn.Parameter(requires_grad=False), so it IS in the state dict (and in
    model.parameters(), never trained); fixed 2-D sin-cos table: token m = r * G + c (G = H/p). Its
    first D/2 columns encode the COLUMN c and the last D/2 the ROW r (the reference's meshgrid puts w
    first and names it emb_h); each half is [sin(pos * w_k), cos(pos * w_k)], w_k = 10000^(-k / (D/4)),
    k < D/4; built in float64 and stored as float32
  - t_embedder: 256-wide frequency embedding, half = 128, f_k = exp(-ln(10000) k / 128),
    [cos(t f), sin(t f)] (cos first, unlike the DDPM UNet), then mlp.0 Linear(256, D), SiLU,
    mlp.2 Linear(D, D). The reference builds f in float32; the golden run here uses float64, and at
    t = 999 float32 phases are off by up to ~6e-5 rad, which is why the f32 run's worst gradient
    (t_embedder.mlp.0.weight) is ~1e-5 away: compute this embedding on the CPU in float64 (t is an
    integer input) rather than with a GPU cos of a large argument
  - y_embedder.embedding_table: K + 1 rows when class_dropout_prob > 0; row K is the null class. Label
    dropout happens only in training mode (random); this fixture passes y = K directly for the null
    sample and runs in eval mode (DiT has no other train/eval difference)
  - c = t_emb + y_emb; every adaLN_modulation is Sequential(SiLU, Linear) (names adaLN_modulation.1)
  - block: (shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp) = chunk6(adaLN(c));
    x += gate_msa * attn(modulate(norm1(x), shift_msa, scale_msa));
    x += gate_mlp * mlp(modulate(norm2(x), shift_mlp, scale_mlp)); modulate(x, s, a) = x (1 + a) + s;
    norm1/norm2 LayerNorm without affine, eps 1e-6; attn = timm Attention (qkv bias, heads, scale
    head_dim^-0.5, proj); mlp = fc1 (D -> 4D), GELU tanh approximation, fc2
  - final_layer: (shift, scale) = chunk2(adaLN(c)) (shift first); linear(modulate(norm_final(x)))
    -> [N, T, p*p*C_out]; unpatchify: [N, G, G, p, p, C_out] -> einsum nhwpqc->nchpwq ->
    [N, C_out, H, W] (the channel is the fastest index inside a token's vector)
  - learn_sigma doubles C_out: channels [0, C) are eps, [C, 2C) the variance output
  - forward_with_cfg(scale s): eps = u + s (c - u) on the first THREE channels (hard-coded 3 in the
    reference, not in_channels), the remaining channels taken from each half's own pass
  - initialisation zeroes every adaLN_modulation's last Linear and final_layer.linear (adaLN-Zero);
    here they are random instead, or the output and most gradients would be trivially zero

Configuration: input 8x8, patch 2 (T = 16), C = 3, D = 32, depth 2, 2 heads, mlp_ratio 4, K = 10,
class_dropout_prob 0.1 (so the null row exists), learn_sigma True (C_out = 6). Parameters are seeded
random: Linear/Conv weights N(0, 1/fan_in), biases N(0, 0.1^2), embedding table N(0, 1).

Contents:
  <name>           every state-dict entry, pos_embed included
  input.x          [3, 3, 8, 8] F32; input.t [3] I64 timesteps; input.y [3] I64, sample 1 = 10 (null)
  input.target     [3, 6, 8, 8] F32
  out.pred         [3, 6, 8, 8] eval-mode forward(x, t, y)
  out.guided       [3, 6, 8, 8] forward_with_cfg semantics per sample, scale 4: channels [0, 3):
                   u + 4 (c - u) with c = pred with y, u = pred with y := 10; channels [3, 6) from c
  out.loss         [] mean over samples of sum((out.pred - input.target)^2) over C_out, H, W (a test
                   loss touching every output channel, not DiT's training loss)
  grad.<param>     d out.loss / d param for every parameter with requires_grad (not pos_embed)
  grad.input.x     d out.loss / d x
Golden values are float64 runs on the float32 state and inputs, stored as F32; the float32 PyTorch
run's distance is in the metadata (torch_f32_vs_f64), the configuration in "config". The attention key
bias (the middle third of each attn.qkv.bias) has a zero gradient; the rest of that vector does not,
so the per-tensor relative error stays meaningful.

How the TypeScript golden test should use it: build DiT from "config", load the state dict strictly
(pos_embed included; also compare the TS-built pos_embed with the file's, <= 1e-6 absolute), eval
mode, forward, the guided output with scale 4, the loss and its backward; compare with
max|a-b|/max|b| <= 1e-4 per tensor.

Run from anywhere: /usr/bin/python3 scripts/make_dit_golden.py (needs python3-torch, numpy).
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from fixture_io import np_of, rel_err, save_safetensors, worst

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "dit_golden.safetensors")
CONFIG = {
    "input_size": 8,
    "patch_size": 2,
    "in_channels": 3,
    "hidden_size": 32,
    "depth": 2,
    "num_heads": 2,
    "mlp_ratio": 4.0,
    "class_dropout_prob": 0.1,
    "num_classes": 10,
    "learn_sigma": True,
}
CFG_SCALE = 4.0
FREQ_DIM = 256


def sincos_table(D, G):
    """[G*G, D] float64: token r*G + c -> [column code (D/2), row code (D/2)], each [sin, cos]."""

    def code(pos, width):
        w = 1.0 / 10000 ** (np.arange(width // 2, dtype=np.float64) / (width / 2))
        a = pos[:, None] * w[None, :]
        return np.concatenate([np.sin(a), np.cos(a)], axis=1)

    rows, cols = np.divmod(np.arange(G * G, dtype=np.float64), G)
    return np.concatenate([code(cols, D // 2), code(rows, D // 2)], axis=1)


def modulate(x, shift, scale):
    return x * (1 + scale[:, None, :]) + shift[:, None, :]


class PatchEmbed(nn.Module):
    def __init__(self, c, d, p):
        super().__init__()
        self.proj = nn.Conv2d(c, d, p, stride=p)

    def forward(self, x):  # [N, C, H, W] -> [N, T, D]
        return self.proj(x).flatten(2).transpose(1, 2)


class TimestepEmbedder(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(FREQ_DIM, d), nn.SiLU(), nn.Linear(d, d))

    def forward(self, t):  # [N] -> [N, D]
        half = FREQ_DIM // 2
        f = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=t.dtype) / half)
        a = t[:, None] * f[None, :]
        return self.mlp(torch.cat([a.cos(), a.sin()], dim=1))


class LabelEmbedder(nn.Module):
    def __init__(self, k, d, dropout_prob):
        super().__init__()
        self.embedding_table = nn.Embedding(k + (1 if dropout_prob > 0 else 0), d)

    def forward(self, y):  # [N] ints, K = null -> [N, D]
        return self.embedding_table(y)


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):  # [N, T, D]
        n, t, d = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        w = torch.softmax((q * (d // self.heads) ** -0.5) @ k.transpose(-1, -2), dim=-1)
        return self.proj((w @ v).transpose(1, 2).reshape(n, t, d))


class Mlp(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.fc1 = nn.Linear(d, hidden)
        self.fc2 = nn.Linear(hidden, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, d, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(d, heads)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(d, int(d * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))

    def forward(self, x, c):
        s1, a1, g1, s2, a2, g2 = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + g1[:, None, :] * self.attn(modulate(self.norm1(x), s1, a1))
        return x + g2[:, None, :] * self.mlp(modulate(self.norm2(x), s2, a2))


class FinalLayer(nn.Module):
    def __init__(self, d, p, c_out):
        super().__init__()
        self.norm_final = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(d, p * p * c_out)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class DiT(nn.Module):
    """(x [N, C, H, W], t [N] float, y [N] int) -> [N, C_out, H, W]."""

    def __init__(self, cfg):
        super().__init__()
        d, p = cfg["hidden_size"], cfg["patch_size"]
        self.p = p
        self.c_out = cfg["in_channels"] * (2 if cfg["learn_sigma"] else 1)
        self.x_embedder = PatchEmbed(cfg["in_channels"], d, p)
        self.t_embedder = TimestepEmbedder(d)
        self.y_embedder = LabelEmbedder(cfg["num_classes"], d, cfg["class_dropout_prob"])
        G = cfg["input_size"] // p
        self.pos_embed = nn.Parameter(torch.from_numpy(sincos_table(d, G)).float()[None], requires_grad=False)
        self.blocks = nn.ModuleList([Block(d, cfg["num_heads"], cfg["mlp_ratio"]) for _ in range(cfg["depth"])])
        self.final_layer = FinalLayer(d, p, self.c_out)

    def forward(self, x, t, y):
        h = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y)
        for blk in self.blocks:
            h = blk(h, c)
        h = self.final_layer(h, c)  # [N, T, p*p*C_out]
        n, T, _ = h.shape
        G = int(round(T**0.5))
        h = h.view(n, G, G, self.p, self.p, self.c_out).permute(0, 5, 1, 3, 2, 4)
        return h.reshape(n, self.c_out, G * self.p, G * self.p)


def perturb(model, g):
    """Seeded random values for every trainable parameter (adaLN-Zero layers included)."""
    rn = lambda *s: torch.randn(*s, generator=g)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.copy_(rn(*m.weight.shape) / m.weight[0].numel() ** 0.5)
                m.bias.copy_(0.1 * rn(*m.bias.shape))
            elif isinstance(m, nn.Embedding):
                m.weight.copy_(rn(*m.weight.shape))


def run(model, x, t, y, target, null):
    model.eval()
    model.zero_grad()
    x = x.clone().requires_grad_(True)
    pred = model(x, t.to(x.dtype), y)
    loss = (pred - target).square().sum(dim=(1, 2, 3)).mean()
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    with torch.no_grad():
        c = model(x, t.to(x.dtype), y)
        u = model(x, t.to(x.dtype), torch.full_like(y, null))
        guided = c.clone()
        guided[:, :3] = u[:, :3] + CFG_SCALE * (c[:, :3] - u[:, :3])
    return pred.detach(), guided, loss.detach(), grads, x.grad.detach().clone()


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2024)
    m32 = DiT(CONFIG)
    perturb(m32, g)
    state = {k: v.clone() for k, v in m32.state_dict().items()}
    assert "pos_embed" in state and not m32.pos_embed.requires_grad
    m64 = DiT(CONFIG)
    m64.load_state_dict(state)
    m64 = m64.double()

    S, K = CONFIG["input_size"], CONFIG["num_classes"]
    x = torch.randn(3, CONFIG["in_channels"], S, S, generator=g)
    t = torch.tensor([0, 999, 250])
    y = torch.tensor([3, K, 7])
    target = torch.randn(3, m32.c_out, S, S, generator=g)
    p64, gd64, l64, gr64, gx64 = run(m64, x.double(), t, y, target.double(), K)
    p32, gd32, l32, gr32, gx32 = run(m32, x, t, y, target, K)
    w = worst({n: (gr32[n], gr64[n]) for n in gr64})
    note = f"pred {rel_err(p32, p64):.2e}, guided {rel_err(gd32, gd64):.2e}, loss {rel_err(l32, l64):.2e}, input grad {rel_err(gx32, gx64):.2e}, worst grad {w[0]:.2e} ({w[1]})"
    print(f"loss {float(l64):.6f}; torch f32 vs f64: {note}")
    assert float(gr64["y_embedder.embedding_table.weight"][K].abs().max()) > 0  # the null row is used

    out = {k: np_of(v) for k, v in state.items()}
    out["input.x"] = np_of(x)
    out["input.t"] = np_of(t)
    out["input.y"] = np_of(y)
    out["input.target"] = np_of(target)
    out["out.pred"] = np_of(p64)
    out["out.guided"] = np_of(gd64)
    out["out.loss"] = np_of(l64)
    out["grad.input.x"] = np_of(gx64)
    for n, v in gr64.items():
        out["grad." + n] = np_of(v)
    meta = {
        "source": "scripts/make_dit_golden.py",
        "torch": torch.__version__,
        "model": "DiT (facebookresearch/DiT models.py) re-written, pixel space, eval mode",
        "config": json.dumps(CONFIG),
        "cfg_scale": str(CFG_SCALE),
        "pos_embed": "in the state dict (nn.Parameter, requires_grad=False); no gradient stored",
        "precision": "forward/backward in float64 on the f32 state, stored as F32",
        "torch_f32_vs_f64": note,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_safetensors(OUT, out, meta)
    params = sum(p.numel() for p in m32.parameters() if p.requires_grad)
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes, {len(out)} tensors, {params} trainable parameters)")


if __name__ == "__main__":
    main()
