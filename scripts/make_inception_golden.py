#!/usr/bin/env python3
"""Writes test/fixtures/inception_golden.safetensors: golden values of Inception-v3 as torchvision's
`Inception3` builds it (module and parameter names: Conv2d_1a_3x3.conv.weight, Mixed_5b.branch1x1.bn.
running_mean, AuxLogits.conv1.conv.weight, fc.weight, ...) and as pytorch-fid patches it for FID
(`fid_inception_v3`: Mixed_5b-5d, 6b-6e and 7b use average pooling without the padded zeros,
count_include_pad=False; Mixed_7c max-pools its pool branch; 1008 classes, no aux head).

The network is defined here in plain torch (torchvision is not installed on these machines); its
structure follows torchvision/models/inception.py and pytorch_fid/inception.py. Where torchvision is
importable the script checks, at full width, that this definition has exactly torchvision's state-dict
names and shapes and gives its eval-mode logits (it prints whether that check ran).

Every channel count is divided by DIV (16) so that the fixture stays small; the geometry (kernels,
strides, paddings, 299x299 inputs, the aux head on the 17x17 map) is the real one.

Contents (prefixes tv = torchvision layout with the aux head, fid = pytorch-fid's FID Inception;
10 classes instead of 1000 / 1008 to stay small; dropout 0):
  tv.<name>                  every state-dict entry under torchvision's name, BN running statistics
                             randomised too; the fid model loads the same entries less AuxLogits.*
  eval: x2 = the first 2 images of x, labels y2 = input.y2
    tv.eval.logits, tv.eval.features         eval-mode logits and pooled [2, 128] features
    tv.eval.transform.logits                 the same with transform_input=True
    tv.eval.grad.<param>                     d CE(logits, y2) / d param (every parameter but AuxLogits.*)
    tv.eval.grad.input.dot / .absdot         sum(gx * v) and sum(|gx * v|), v[i] = cos(0.3137 i + 0.1)
    tv.eval.grad.input.corner                gx[:, :, :12, :12]
    fid.eval.logits, fid.eval.features       the FID Inception's eval-mode logits and features
    fid.eval.dims64 / dims192 / dims768      pytorch-fid's --dims 64, 192, 768: the outputs of its blocks
                                             0, 1 and 2 (first max pool, second max pool, Mixed_6e),
                                             spatially averaged as its get_activations does
  train: x = 8 images, labels input.y8; training mode (batch statistics), loss CE(logits) + 0.4 CE(aux)
    tv.train.logits, tv.train.aux, tv.train.loss
    tv.train.grad.AuxLogits.<param>          the aux head's gradients
The inputs are not stored: x[i] = hashed(i) over the flat index of [8, 3, 299, 299] (an integer hash,
see `hashed`, mapped to [-1.5, 1.5) and rounded to float32; the test builds the same values).

Only the eval-mode backward is compared for the whole network: in training mode, 94 batch norms
over random weights make the early gradients ill-conditioned (PyTorch's own float32 run is up to ~50%
off its float64 run there), so that pass checks the outputs and the aux head's gradients, whose
float32 error PyTorch keeps below 1e-4. Training-mode batch norm's backward is covered by the kernel
tests and the ResNet golden test.

Golden values are float64 runs on the float32-rounded state and inputs, stored as F32; PyTorch's own
float32 error per compared tensor is in the metadata (torch_f32_err, max|a-b|/max|b|).

How the TypeScript golden test should use it: build InceptionV3 with the metadata's options, load the
"tv." state strictly (fid: less AuxLogits.*), run the passes above and compare each tensor with
max|a-b|/max|b| <= max(1e-4, 4 * torch_f32_err); the input-gradient projection within 1e-4 * absdot.

Run from anywhere: /usr/bin/python3 scripts/make_inception_golden.py (needs python3-torch).
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from fixture_io import np_of, rel_err, save_safetensors, worst

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "inception_golden.safetensors")
DIV = 16
N, S = 2, 299
CLASSES = 10


class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, **kw):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def avg3(x, fid):
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=not fid)


class InceptionA(nn.Module):
    def __init__(self, cin, pool, d, fid):
        super().__init__()
        self.fid = fid
        self.branch1x1 = BasicConv2d(cin, 64 // d, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48 // d, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48 // d, 64 // d, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64 // d, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64 // d, 96 // d, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96 // d, 96 // d, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(avg3(x, self.fid))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    def __init__(self, cin, d):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384 // d, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64 // d, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64 // d, 96 // d, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96 // d, 96 // d, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin, c7, d, fid):
        super().__init__()
        self.fid = fid
        self.branch1x1 = BasicConv2d(cin, 192 // d, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192 // d, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192 // d, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192 // d, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for k in range(1, 6):
            bd = getattr(self, f"branch7x7dbl_{k}")(bd)
        bp = self.branch_pool(avg3(x, self.fid))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    def __init__(self, cin, d):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192 // d, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192 // d, 320 // d, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192 // d, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192 // d, 192 // d, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192 // d, 192 // d, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192 // d, 192 // d, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    # pool: 'avg' (torchvision), 'avg-nopad' (FID Mixed_7b), 'max' (FID Mixed_7c)
    def __init__(self, cin, d, pool):
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(cin, 320 // d, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, 384 // d, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384 // d, 384 // d, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384 // d, 384 // d, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448 // d, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448 // d, 384 // d, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384 // d, 384 // d, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384 // d, 384 // d, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192 // d, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        if self.pool == "max":
            p = F.max_pool2d(x, 3, stride=1, padding=1)
        else:
            p = avg3(x, self.pool == "avg-nopad")
        return torch.cat([b1, b3, bd, self.branch_pool(p)], 1)


class InceptionAux(nn.Module):
    def __init__(self, cin, classes, d):
        super().__init__()
        self.conv0 = BasicConv2d(cin, 128 // d, kernel_size=1)
        self.conv1 = BasicConv2d(128 // d, 768 // d, kernel_size=5)
        self.fc = nn.Linear(768 // d, classes)

    def forward(self, x):
        x = self.conv1(self.conv0(F.avg_pool2d(x, 5, stride=3)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Inception3(nn.Module):
    def __init__(self, classes, aux, transform_input, fid, d, dropout=0.0):
        super().__init__()
        self.transform_input = transform_input
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32 // d, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32 // d, 32 // d, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32 // d, 64 // d, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64 // d, 80 // d, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80 // d, 192 // d, kernel_size=3)
        self.Mixed_5b = InceptionA(192 // d, 32 // d, d, fid)
        self.Mixed_5c = InceptionA(256 // d, 64 // d, d, fid)
        self.Mixed_5d = InceptionA(288 // d, 64 // d, d, fid)
        self.Mixed_6a = InceptionB(288 // d, d)
        self.Mixed_6b = InceptionC(768 // d, 128 // d, d, fid)
        self.Mixed_6c = InceptionC(768 // d, 160 // d, d, fid)
        self.Mixed_6d = InceptionC(768 // d, 160 // d, d, fid)
        self.Mixed_6e = InceptionC(768 // d, 192 // d, d, fid)
        self.AuxLogits = InceptionAux(768 // d, classes, d) if aux else None
        self.Mixed_7a = InceptionD(768 // d, d)
        self.Mixed_7b = InceptionE(1280 // d, d, "avg-nopad" if fid else "avg")
        self.Mixed_7c = InceptionE(2048 // d, d, "max" if fid else "avg")
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2048 // d, classes)

    def blocks(self, x):
        """pytorch-fid's blocks 0-2 (first max pool, second max pool, Mixed_6e), spatially averaged."""
        x = F.max_pool2d(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x))), 3, stride=2)
        b0 = x
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        b1 = x
        for name in ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"]:
            x = getattr(self, name)(x)
        return [torch.flatten(F.adaptive_avg_pool2d(b, 1), 1) for b in (b0, b1, x)]

    def forward(self, x):
        if self.transform_input:
            x = torch.cat(
                [
                    x[:, 0:1] * (0.229 / 0.5) + (0.485 - 0.5) / 0.5,
                    x[:, 1:2] * (0.224 / 0.5) + (0.456 - 0.5) / 0.5,
                    x[:, 2:3] * (0.225 / 0.5) + (0.406 - 0.5) / 0.5,
                ],
                1,
            )
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"]:
            x = getattr(self, name)(x)
        aux = self.AuxLogits(x) if self.AuxLogits is not None and self.training else None
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        feats = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(self.dropout(feats)), aux, feats


def check_against_torchvision():
    """At full width: torchvision's state-dict names/shapes and eval logits equal this definition's."""
    try:
        import torchvision
    except ImportError:
        return "not run (torchvision is not installed)"
    tv = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False, num_classes=CLASSES).eval()
    ours = Inception3(CLASSES, True, False, False, 1).eval()
    a = {k: tuple(v.shape) for k, v in tv.state_dict().items()}
    b = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert a == b, f"state dicts differ: {sorted(set(a) ^ set(b))[:10]}"
    ours.load_state_dict(tv.state_dict())
    x = torch.randn(1, 3, 299, 299)
    with torch.no_grad():
        err = rel_err(ours(x)[0], tv(x))
    assert err < 1e-5, err
    return f"ran: names, shapes and eval logits equal torchvision {torchvision.__version__} (logits rel err {err:.1e})"


def perturb(model, g):
    """Seeded random values for every parameter and BN running statistic."""
    rn = lambda *s: torch.randn(*s, generator=g)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(rn(*m.weight.shape) / m.weight[0].numel() ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(0.1 * rn(*m.bias.shape))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.3 * rn(*m.weight.shape))
                m.bias.copy_(0.2 * rn(*m.bias.shape))
                m.running_mean.copy_(0.2 * rn(*m.running_mean.shape))
                m.running_var.copy_(0.5 + torch.rand(*m.running_var.shape, generator=g))


def hashed(n, scale=1.5):
    """Deterministic inputs: an integer hash of the flat index mapped to [-scale, scale), float32."""
    i = np.arange(n, dtype=np.uint64)
    h = (i * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(2246822519)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(13)
    return (h.astype(np.float64) / 2**32 * 2 * scale - scale).astype(np.float32)


def grads_of(m, skip=()):
    return {n: p.grad.detach().clone() for n, p in m.named_parameters() if p.grad is not None and not n.startswith(skip)}


def run(m, state, x2, y2, x8, y8, dt):
    """The passes of the module docstring on one precision."""
    cast = (lambda t: t.double()) if dt == "f64" else (lambda t: t)
    m.load_state_dict(state)
    r = {}
    m.eval()
    xx = cast(x2).clone().requires_grad_(True)
    logits, _, feats = m(xx)
    F.cross_entropy(logits, y2).backward()
    r["eval.logits"], r["eval.features"] = logits.detach(), feats.detach()
    r["gx"] = xx.grad.detach()
    r.update({"eval.grad." + n: g for n, g in grads_of(m).items()})
    with torch.no_grad():
        m.transform_input = True
        r["eval.transform.logits"] = m(cast(x2))[0]
        m.transform_input = False
    m.zero_grad()
    m.train()
    logits, aux, _ = m(cast(x8))
    loss = F.cross_entropy(logits, y8) + 0.4 * F.cross_entropy(aux, y8)
    loss.backward()
    r["train.logits"], r["train.aux"], r["train.loss"] = logits.detach(), aux.detach(), loss.detach()
    r.update({"train.grad." + n: g for n, g in grads_of(m).items() if n.startswith("AuxLogits.")})
    return r


def main():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2024)
    tv_check = check_against_torchvision()
    print("torchvision check:", tv_check)
    x8 = torch.from_numpy(hashed(8 * 3 * S * S).reshape(8, 3, S, S))
    x2 = x8[:2].clone()
    v = np.cos(np.arange(2 * 3 * S * S, dtype=np.float64) * 0.3137 + 0.1).reshape(2, 3, S, S)
    y2 = torch.tensor([3, 7])
    y8 = torch.tensor([3, 7, 0, 9, 1, 1, 5, 2])
    options = {
        "tv": {"numClasses": CLASSES, "auxLogits": True, "widthDiv": DIV, "dropout": 0},
        "fid": {"fid": True, "numClasses": CLASSES, "widthDiv": DIV},
    }
    m32 = Inception3(CLASSES, True, False, False, DIV)
    perturb(m32, g)
    state = {k: t.clone() for k, t in m32.state_dict().items()}
    r = run(Inception3(CLASSES, True, False, False, DIV).double(), state, x2, y2, x8, y8, "f64")
    r32 = run(Inception3(CLASSES, True, False, False, DIV), state, x2, y2, x8, y8, "f32")
    out = {"input.y2": np_of(y2), "input.y8": np_of(y8)}
    for k, t in state.items():
        out["tv." + k] = np_of(t)
    err = {}
    for k, t in r.items():
        if k == "gx":
            continue
        out["tv." + k] = np_of(t)
        err["tv." + k] = rel_err(r32[k], t)
    gx, gx32 = r["gx"].numpy(), r32["gx"].numpy()
    out["tv.eval.grad.input.dot"] = np.array((gx * v).sum(), dtype=np.float32)
    out["tv.eval.grad.input.absdot"] = np.array(np.abs(gx * v).sum(), dtype=np.float32)
    out["tv.eval.grad.input.corner"] = np_of(r["gx"][:, :, :12, :12])
    err["tv.eval.grad.input.corner"] = rel_err(r32["gx"][:, :, :12, :12], r["gx"][:, :, :12, :12])
    err["tv.eval.grad.input.dot"] = float(abs((gx32 * v).sum() - (gx * v).sum()) / np.abs(gx * v).sum())

    fstate = {k: t for k, t in state.items() if not k.startswith("AuxLogits.")}
    f64 = Inception3(CLASSES, False, False, True, DIV).double()
    f32 = Inception3(CLASSES, False, False, True, DIV)
    f64.load_state_dict(fstate)
    f32.load_state_dict(fstate)
    f64.eval()
    f32.eval()
    with torch.no_grad():
        lg, _, ft = f64(x2.double())
        lg32, _, ft32 = f32(x2)
        blocks, blocks32 = f64.blocks(x2.double()), f32.blocks(x2)
    out["fid.eval.logits"], out["fid.eval.features"] = np_of(lg), np_of(ft)
    err["fid.eval.logits"], err["fid.eval.features"] = rel_err(lg32, lg), rel_err(ft32, ft)
    for dims, b, b32 in zip((64, 192, 768), blocks, blocks32):
        out[f"fid.eval.dims{dims}"] = np_of(b)
        err[f"fid.eval.dims{dims}"] = rel_err(b32, b)
    w = max((e, k) for k, e in err.items())
    print(f"train loss {float(r['train.loss']):.6f}; torch f32 vs f64: worst {w[0]:.2e} ({w[1]}); input grad {rel_err(gx32, gx):.2e}")

    meta = {
        "source": "scripts/make_inception_golden.py",
        "torch": torch.__version__,
        "model": "torchvision Inception3 / pytorch-fid FID Inception, channels divided by 16, 299x299",
        "options": json.dumps(options),
        "input": "x [8,3,299,299] = hashed(flat index) (see the script), x2 = x[:2]; projection v = cos(0.3137 i + 0.1)",
        "precision": "forward/backward in float64 on the f32 state, stored as F32",
        "torch_f32_err": json.dumps({k: float(f"{e:.3g}") for k, e in err.items()}),
        "torchvision_check": tv_check,
    }
    save_safetensors(OUT, out, meta)
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes, {len(out)} tensors)")


if __name__ == "__main__":
    main()
