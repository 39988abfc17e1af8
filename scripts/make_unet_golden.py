#!/usr/bin/env python3
"""Writes test/fixtures/unet_golden.safetensors: golden values of the class-conditional DDPM UNet of the
SFR-on authors (DDPM/models/diffusion.py, class Conditional_Model), written here from scratch with the
same state-dict names, at a tiny width: the conditional noise prediction (one sample on the null class),
the guided prediction, the noise-regression loss and every parameter gradient. It does not cover the
diffusion schedule, sampling, dropout > 0 or the 'bayesian' model type (its extra logvar parameter).

Letters: N batch, C channels, H W spatial size, T timesteps (1000), K classes.

Details checked against the authors' code, also numerically (not part of this script): this module's
state dict loads strictly into the authors' Conditional_Model (einops stubbed; its timestep embedding
switched to float64 for the comparison) and the conditional, null and guided outputs agree to 2e-15..6e-15
in float64 at ch 32 / 32 groups (ch_mult [1,2] and [1,2,2]) and ch 128; with the reference's GroupNorm
set to this fixture's 2 groups and its cemb width to 4ch, it reproduces out.eps, out.guided, out.loss
and every gradient of this file to the F32 storage rounding (<= 6e-8):
  - timestep embedding of width ch: half = ch/2, f_k = exp(-k ln(10000) / (half - 1)),
    e = [sin(t f), cos(t f)] (sin first), t converted to float first (the caller passes t.float())
  - temb: dense.0 (ch -> 4ch), SiLU, dense.1 (4ch -> 4ch), no activation after dense.1
  - cemb: classes_emb(y) [N, ch], or null_classes_emb [ch] where the sample's condition is dropped,
    then dense.0 (ch -> 4ch), SiLU, dense.1 (4ch -> 4ch)
  - ResnetBlock: h = conv1(SiLU(norm1(x))); h += temb_cemb_proj(SiLU(concat[temb, cemb]))[:, :, None, None];
    h = conv2(dropout(SiLU(norm2(h)))); out = (nin_shortcut(x) if C_in != C_out else x) + h.
    TRAP: the reference sizes temb_cemb_proj as Linear(4ch + 512, C_out) (cemb_channels defaults to
    512), which equals the concatenation's real width 8ch only at ch = 128; here it is Linear(8ch, C_out)
  - the reference computes the timestep embedding in float32 even for a float64 model (arange float32);
    here it follows t's dtype, so the golden run uses float64 frequencies (at t = 999 float32 phases are
    off by up to ~6e-5 rad; the f32 run below shows the effect on eps is ~5e-7)
  - AttnBlock: single head over all H*W positions: q, k, v = 1x1 convs of norm(x);
    w[i, j] = softmax_j(q_i . k_j * C^-0.5); out_i = sum_j w[i, j] v_j; x + proj_out(out)
  - GroupNorm(32 groups, eps 1e-6, affine) everywhere (num_groups below); SiLU = x * sigmoid(x)
  - Downsample: zero-pad right and bottom by 1 (F.pad (0, 1, 0, 1)), 3x3 conv stride 2, padding 0
  - Upsample: nearest x2, then 3x3 conv padding 1
  - down path: hs = [conv_in(x)]; per level, per block: h = block(hs[-1]); h = attn(h) when the level's
    resolution is in attn_resolutions; hs.append(h); after every level but the last hs.append(downsample(hs[-1]))
  - middle: block_1, attn_1, block_2 (attention always)
  - up path, levels from the lowest resolution: num_res_blocks + 1 blocks, each on
    concat([h, hs.pop()], dim=1) (h first, the skip second); block in-channels = C_h + C_skip with
    C_skip = ch*ch_mult[level] for the first num_res_blocks blocks and ch*in_ch_mult[level] for the last
    (in_ch_mult = (1,) + ch_mult); attention after each block at attn resolutions; upsample after every
    level but level 0. up.{i} is indexed by level (the reference prepends), so up.0 is full resolution
  - end: norm_out, SiLU, conv_out
  - guidance (mode "test", cond_scale w): (1 + w) * eps(x, t, y) - w * eps(x, t, null), the first with no
    condition dropped, the second with all dropped; w = 2 here
  - loss (functions/losses.py): sum over C, H, W of (target - eps)^2, mean over the batch

Configuration: ch 8 with GroupNorm num_groups 2, ch_mult [1, 2], num_res_blocks 1, attn_resolutions
[16] on 16x16 inputs (attention in down.0, up.0 and the middle), 3 in / 3 out channels, 10 classes,
dropout 0. Why not ch 32 with the reference's 32 groups: a group would then hold ONE channel in every
32-wide block, GroupNorm becomes instance norm, and norm2 removes the per-channel constant that
temb_cemb_proj adds, so the time/class conditioning of those blocks (and the gradients of their
temb_cemb_proj and conv1.bias) is exactly zero; the reference model has 4 channels per group at ch 128
(8 at 256), and ch 8 / 2 groups keeps those ratios (4 and 8). It also keeps the file at ~350 kB
instead of ~4.5 MB (740k parameters at ch 32). So the TS UNet needs num_groups as an option (default 32).
Parameters are seeded random, non-default values rounded to float16-exact
numbers and stored as F16 (lossless; halves the file): conv/linear weights N(0, 1/fan_in), biases
N(0, 0.1^2), GroupNorm weight 1 + N(0, 0.3^2), bias N(0, 0.2^2), class and null embeddings N(0, 1).

Contents:
  <name>             every parameter, F16 (values exactly representable; load as f32)
  input.x            [3, 3, 16, 16] F32
  input.t            [3] I64 timesteps in [0, 1000)
  input.y            [3] I64 classes
  input.cond_drop    [3] I64, 1 = use null_classes_emb instead of classes_emb(y) (sample 2 here)
  input.eps          [3, 3, 16, 16] F32 regression target
  out.eps            [3, 3, 16, 16] prediction with input.cond_drop applied
  out.guided         [3, 3, 16, 16] (1 + 2) eps(x, t, y) - 2 eps(x, t, null)  (cond_drop not used)
  out.loss           [] mean over samples of sum((input.eps - out.eps)^2)
  grad.<param>       d out.loss / d param, every parameter (null_classes_emb gets its gradient from
                     sample 2 only). The attention key biases (*.attn.*.k.bias, mid.attn_1.k.bias) have a
                     mathematically zero gradient (softmax over keys ignores q.b_k, the same for every
                     key); their stored values are float64 rounding noise (~1e-17 of the largest
                     gradient); metadata "zero_grads" lists them
Golden values are float64 runs on the stored state and inputs, stored as F32; the float32 PyTorch
run's distance is in the metadata (torch_f32_vs_f64), the configuration in "config".

How the TypeScript golden test should use it: build the UNet from "config" (temb_cemb_proj 8ch wide),
load the state dict strictly by name (F16 -> f32), evaluate out.eps with the drop mask, out.guided
with condScale 2, the loss and its backward; compare each output and every gradient with
max|a-b|/max|b| <= 1e-4 per tensor (the f32 run here is ~1e-6 away), except the "zero_grads", which
must satisfy max|g| <= 1e-5 * (largest |gradient| over all parameters).

Run from anywhere: /usr/bin/python3 scripts/make_unet_golden.py (needs python3-torch).
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from fixture_io import np_of, rel_err, save_safetensors, worst

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "unet_golden.safetensors")
CONFIG = {
    "ch": 8,
    "num_groups": 2,
    "out_ch": 3,
    "ch_mult": [1, 2],
    "num_res_blocks": 1,
    "attn_resolutions": [16],
    "dropout": 0.0,
    "in_channels": 3,
    "resolution": 16,
    "n_classes": 10,
    "num_timesteps": 1000,
}
COND_SCALE = 2.0


def group_norm(c, groups):
    return nn.GroupNorm(groups, c, eps=1e-6, affine=True)


def sinusoid(t, dim):
    """[N] timesteps -> [N, dim]: [sin(t f_k), cos(t f_k)], f_k = 10000^(-k / (dim/2 - 1))."""
    half = dim // 2
    k = torch.arange(half, dtype=torch.float64 if t.dtype == torch.float64 else torch.float32)
    freq = torch.exp(-math.log(10000.0) * k / (half - 1))
    arg = t[:, None] * freq[None, :].to(t.dtype)
    emb = torch.cat([arg.sin(), arg.cos()], dim=1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class EmbedMLP(nn.Module):
    """Two linears with SiLU between them, held as `dense` so the names are dense.0 / dense.1."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.dense = nn.ModuleList([nn.Linear(c_in, c_out), nn.Linear(c_out, c_out)])

    def forward(self, e):
        return self.dense[1](F.silu(self.dense[0](e)))


class ResBlock(nn.Module):
    """x [N, C_in, H, W], cond [N, 8ch] (concat of temb, cemb) -> [N, C_out, H, W]."""

    def __init__(self, c_in, c_out, cond_width, dropout, groups):
        super().__init__()
        self.norm1 = group_norm(c_in, groups)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb_cemb_proj = nn.Linear(cond_width, c_out)
        self.norm2 = group_norm(c_out, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        if c_in != c_out:
            self.nin_shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x, cond):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_cemb_proj(F.silu(cond))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        skip = self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x
        return skip + h


class SelfAttention2d(nn.Module):
    """One-head attention over the H*W positions of x [N, C, H, W], residual."""

    def __init__(self, c, groups):
        super().__init__()
        self.norm = group_norm(c, groups)
        self.q = nn.Conv2d(c, c, 1)
        self.k = nn.Conv2d(c, c, 1)
        self.v = nn.Conv2d(c, c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        z = self.norm(x)
        q = self.q(z).flatten(2)  # [N, C, L]
        k = self.k(z).flatten(2)
        v = self.v(z).flatten(2)
        weights = torch.softmax(torch.einsum("ncl,ncm->nlm", q, k) / math.sqrt(c), dim=-1)  # [N, L(query), L(key)]
        att = torch.einsum("nlm,ncm->ncl", weights, v).reshape(n, c, h, w)
        return x + self.proj_out(att)


class Resample(nn.Module):
    """'down': pad right/bottom by 1, 3x3 stride-2 conv; 'up': nearest x2, 3x3 conv."""

    def __init__(self, c, kind):
        super().__init__()
        self.kind = kind
        self.conv = nn.Conv2d(c, c, 3, stride=2 if kind == "down" else 1, padding=0 if kind == "down" else 1)

    def forward(self, x):
        if self.kind == "down":
            return self.conv(F.pad(x, (0, 1, 0, 1)))
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ConditionalUNet(nn.Module):
    """eps(x [N, 3, H, W], t [N] float, y [N] int, drop [N] bool) -> [N, out_ch, H, W]."""

    def __init__(self, cfg):
        super().__init__()
        ch, mult, nrb = cfg["ch"], cfg["ch_mult"], cfg["num_res_blocks"]
        self.cfg = cfg
        cond = 8 * ch  # concat of temb (4ch) and cemb (4ch)
        gn = cfg["num_groups"]
        block = lambda a, b: ResBlock(a, b, cond, cfg["dropout"], gn)
        attn = lambda c: SelfAttention2d(c, gn)
        self.temb = EmbedMLP(ch, 4 * ch)
        self.classes_emb = nn.Embedding(cfg["n_classes"], ch)
        self.null_classes_emb = nn.Parameter(torch.randn(ch))
        self.cemb = EmbedMLP(ch, 4 * ch)
        self.conv_in = nn.Conv2d(cfg["in_channels"], ch, 3, padding=1)

        widths = [ch * m for m in mult]
        res = [cfg["resolution"] // 2**i for i in range(len(mult))]
        self.down = nn.ModuleList()
        skips = [ch]  # channels of each tensor pushed on the skip stack
        c = ch
        for i, w in enumerate(widths):
            level = nn.Module()
            level.block, level.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(nrb):
                level.block.append(block(c, w))
                c = w
                if res[i] in cfg["attn_resolutions"]:
                    level.attn.append(attn(c))
                skips.append(c)
            if i < len(widths) - 1:
                level.downsample = Resample(c, "down")
                skips.append(c)
            self.down.append(level)

        self.mid = nn.Module()
        self.mid.block_1, self.mid.attn_1, self.mid.block_2 = block(c, c), attn(c), block(c, c)

        levels = [None] * len(widths)
        for i in reversed(range(len(widths))):
            level = nn.Module()
            level.block, level.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(nrb + 1):
                level.block.append(block(c + skips.pop(), widths[i]))
                c = widths[i]
                if res[i] in cfg["attn_resolutions"]:
                    level.attn.append(attn(c))
            if i > 0:
                level.upsample = Resample(c, "up")
            levels[i] = level
        assert not skips
        self.up = nn.ModuleList(levels)
        self.norm_out = group_norm(c, gn)
        self.conv_out = nn.Conv2d(c, cfg["out_ch"], 3, padding=1)

    def forward(self, x, t, y, drop):
        temb = self.temb(sinusoid(t, self.cfg["ch"]))
        cls = torch.where(drop[:, None], self.null_classes_emb[None, :].expand(x.shape[0], -1), self.classes_emb(y))
        cond = torch.cat([temb, self.cemb(cls)], dim=1)

        stack = [self.conv_in(x)]
        for level in self.down:
            for j, blk in enumerate(level.block):
                h = blk(stack[-1], cond)
                stack.append(level.attn[j](h) if len(level.attn) else h)
            if hasattr(level, "downsample"):
                stack.append(level.downsample(stack[-1]))
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(stack[-1], cond)), cond)
        for level in reversed(self.up):
            for j, blk in enumerate(level.block):
                h = blk(torch.cat([h, stack.pop()], dim=1), cond)
                if len(level.attn):
                    h = level.attn[j](h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))

    def guided(self, x, t, y, w):
        """(1 + w) eps(x, t, y) - w eps(x, t, null)."""
        n = x.shape[0]
        cond = self.forward(x, t, y, torch.zeros(n, dtype=torch.bool))
        null = self.forward(x, t, y, torch.ones(n, dtype=torch.bool))
        return (1 + w) * cond - w * null


def perturb(model, g):
    """Seeded random, float16-exact values for every parameter (see the module docstring)."""
    rn = lambda *s: torch.randn(*s, generator=g)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.copy_(rn(*m.weight.shape) / m.weight[0].numel() ** 0.5)
                m.bias.copy_(0.1 * rn(*m.bias.shape))
            elif isinstance(m, nn.GroupNorm):
                m.weight.copy_(1 + 0.3 * rn(*m.weight.shape))
                m.bias.copy_(0.2 * rn(*m.bias.shape))
            elif isinstance(m, nn.Embedding):
                m.weight.copy_(rn(*m.weight.shape))
        model.null_classes_emb.copy_(rn(*model.null_classes_emb.shape))
        for p in model.parameters():
            p.copy_(p.half().float())


def run(model, x, t, y, drop, target):
    """out.eps, out.guided, out.loss and every parameter gradient of out.loss."""
    model.train()
    model.zero_grad()
    eps = model(x, t.to(x.dtype), y, drop)
    loss = (target - eps).square().sum(dim=(1, 2, 3)).mean()
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        guided = model.guided(x, t.to(x.dtype), y, COND_SCALE)
    return eps.detach(), guided, loss.detach(), grads


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(777)
    m32 = ConditionalUNet(CONFIG)
    perturb(m32, g)
    state = {k: v.clone() for k, v in m32.state_dict().items()}
    m64 = ConditionalUNet(CONFIG)
    m64.load_state_dict(state)
    m64 = m64.double()

    S = CONFIG["resolution"]
    x = torch.randn(3, 3, S, S, generator=g)
    t = torch.tensor([0, 999, 417])
    y = torch.tensor([3, 7, 5])
    drop = torch.tensor([False, False, True])
    target = torch.randn(3, 3, S, S, generator=g)
    e64, gd64, l64, gr64 = run(m64, x.double(), t, y, drop, target.double())
    e32, gd32, l32, gr32 = run(m32, x, t, y, drop, target)
    assert float(gr64["null_classes_emb"].abs().max()) > 0 and float(gr64["classes_emb.weight"][0].abs().max()) == 0
    top = max(float(v.abs().max()) for v in gr64.values())
    zero_grads = sorted(n for n, v in gr64.items() if float(v.abs().max()) < 1e-12 * top)
    assert zero_grads and all(n.endswith("k.bias") for n in zero_grads), zero_grads
    w = worst({n: (gr32[n], gr64[n]) for n in gr64 if n not in zero_grads})
    wz = max(float(gr32[n].abs().max()) for n in zero_grads) / top
    note = (f"eps {rel_err(e32, e64):.2e}, guided {rel_err(gd32, gd64):.2e}, loss {rel_err(l32, l64):.2e}, worst grad {w[0]:.2e} ({w[1]}), "
            f"zero_grads max|g| / top {wz:.1e}")
    print(f"loss {float(l64):.6f}; torch f32 vs f64: {note}")

    out = {k: np_of(v, np.float16) for k, v in state.items()}
    assert all(np.array_equal(out[k].astype(np.float32), np_of(v)) for k, v in state.items())
    out["input.x"] = np_of(x)
    out["input.t"] = np_of(t)
    out["input.y"] = np_of(y)
    out["input.cond_drop"] = np_of(drop.long())
    out["input.eps"] = np_of(target)
    out["out.eps"] = np_of(e64)
    out["out.guided"] = np_of(gd64)
    out["out.loss"] = np_of(l64)
    for n, v in gr64.items():
        out["grad." + n] = np_of(v)
    meta = {
        "source": "scripts/make_unet_golden.py",
        "torch": torch.__version__,
        "model": "DDPM Conditional_Model (authors' DDPM/models/diffusion.py) re-written, temb_cemb_proj 8ch wide",
        "config": json.dumps(CONFIG),
        "cond_scale": str(COND_SCALE),
        "zero_grads": json.dumps(zero_grads),
        "precision": "forward/backward in float64 on the stored (f16-exact) state, stored as F32",
        "torch_f32_vs_f64": note,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_safetensors(OUT, out, meta)
    params = sum(p.numel() for p in m32.parameters())
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes, {len(out)} tensors, {params} parameters)")


if __name__ == "__main__":
    main()
