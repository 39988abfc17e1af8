#!/usr/bin/env python3
"""Writes test/fixtures/forward-resnet18/: inputs and PyTorch's answer for the parity check of the CLI
verb `forward --arch resnet18` (issue 12): FP16 weights of a ResNet-18 in torchvision's names, split
over two safetensors shards, an input batch, and the eval-mode logits PyTorch computes from them. It
does not check training mode (--train) or the other architectures.

Two cases, each with the TypeScript ResNet's options (src/models/resnet.ts) in camelCase:
  cifar     {"numClasses": 10, "variant": "cifar", "width": 8}      x [4, 3, 32, 32]
  imagenet  {"numClasses": 7, "variant": "imagenet", "width": 4}    x [2, 3, 64, 64]
Files per case C:
  C.weights-1.safetensors, C.weights-2.safetensors   the state dict in two shards, F16 (parameters and
      running statistics) and I64 (num_batches_tracked). The split is contiguous in state-dict order at
      half the bytes and deliberately falls inside a BatchNorm (its weight/bias in one shard, its running
      statistics in the other): the loader must merge the shards by name
  C.input.safetensors      x F32
  C.expected.safetensors   out F32 [N, classes]: float32 PyTorch, eval mode, on the F16 weights widened
      to float32; out_f64 the same in float64 (metadata: their distance, and the options JSON)
The weights are seeded random: convs kaiming-normal (fan-out), fc N(0, 1/fan_in) and bias N(0, 0.1^2),
BN weight 1 + N(0, 0.3^2), bias N(0, 0.2^2); the running statistics are the batch statistics of four
random training-mode batches of the case's image size (cumulative average) scaled by 1 + U(-0.2, 0.2) (means shifted by up to 0.2
of the std), so they are far from the defaults (0, 1) yet keep eval-mode activations at a sane scale;
num_batches_tracked is 4.

Before writing, the script checks that scripts/torch_resnet.py is torchvision's resnet18: at width 64 the
'imagenet' stem loads strictly into torchvision.models.resnet18 and gives the same logits, and the
'cifar' stem likewise into resnet18 with conv1 = 3x3 stride 1 and maxpool = identity.

How the TypeScript test should compare (when the verb exists):
  npx tsx src/cli/main.ts forward --arch resnet18 --options '<the case's options JSON>' \
      --weights <dir>/C.weights-1.safetensors,<dir>/C.weights-2.safetensors \
      --input <dir>/C.input.safetensors --out <tmp>/out.safetensors
  then read `out` from <tmp>/out.safetensors and from C.expected.safetensors: same shape, and
  max|a - b| / max|b| <= 1e-4 (the f32 PyTorch answer is ~1e-6 from the float64 one, see metadata).
  Also worth asserting: with only one shard the verb fails naming the missing tensors; the options
  JSON of the expected file's metadata ("options") is the one to pass.

Run from anywhere: /usr/bin/python3 scripts/make_resnet_forward_check.py (python3-torch, torchvision).
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torchvision

from fixture_io import np_of, rel_err, save_safetensors
from torch_resnet import ResNet18

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "forward-resnet18")
CASES = {
    "cifar": {"options": {"numClasses": 10, "variant": "cifar", "width": 8}, "x": [4, 3, 32, 32]},
    "imagenet": {"options": {"numClasses": 7, "variant": "imagenet", "width": 4}, "x": [2, 3, 64, 64]},
}


def check_against_torchvision():
    """Our ResNet18 at width 64 == torchvision's resnet18 (names, strict load, logits)."""
    g = torch.Generator().manual_seed(5)
    for variant in ("imagenet", "cifar"):
        ours = ResNet18(64, 10, variant=variant)
        tv = torchvision.models.resnet18(num_classes=10)
        if variant == "cifar":
            tv.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
            tv.maxpool = nn.Identity()
        randomize(ours, g)
        assert list(ours.state_dict()) == list(tv.state_dict()), f"{variant}: state-dict names differ from torchvision's"
        tv.load_state_dict(ours.state_dict(), strict=True)
        x = torch.randn(2, 3, 32, 32, generator=g)
        with torch.no_grad():
            err = rel_err(ours.eval()(x), tv.eval()(x))
        assert err < 1e-6, f"{variant}: logits differ from torchvision's by {err}"
        print(f"torch_resnet == torchvision resnet18 ({variant} stem, width 64): logits rel err {err:.1e}")


def randomize(model, g, side=32):
    """Seeded random weights and non-default BatchNorm statistics (see the module docstring)."""
    rn = lambda *s: torch.randn(*s, generator=g)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.weight.shape[0] * m.weight[0, 0].numel()
                m.weight.copy_(rn(*m.weight.shape) * (2.0 / fan_out) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.3 * rn(m.num_features))
                m.bias.copy_(0.2 * rn(m.num_features))
            elif isinstance(m, nn.Linear):
                m.weight.copy_(rn(*m.weight.shape) / m.in_features**0.5)
                m.bias.copy_(0.1 * rn(m.out_features))
        # running statistics: cumulative batch statistics of random inputs, then perturbed
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        for _ in range(4):
            model(torch.randn(8, model.conv1.in_channels, side, side, generator=g))
        for m in bns:
            m.momentum = 0.1
            std = m.running_var.sqrt()
            m.running_mean.add_(0.2 * (2 * torch.rand(m.num_features, generator=g) - 1) * std)
            m.running_var.mul_(1 + 0.2 * (2 * torch.rand(m.num_features, generator=g) - 1))
    model.eval()


def split_state(state):
    """Two contiguous shards at half the bytes; the cut is moved into a BatchNorm's tensors."""
    names = list(state)
    sizes = [state[n].numel() * state[n].element_size() for n in names]
    half, acc, cut = sum(sizes) / 2, 0, len(names)
    for i, s in enumerate(sizes):
        acc += s
        if acc >= half:
            cut = i + 1
            break
    # move the cut forward to just after a BatchNorm bias, so weight/bias and running stats separate
    while not names[cut - 1].endswith(".bias") or not names[cut].endswith("running_mean"):
        cut += 1
    return {n: state[n] for n in names[:cut]}, {n: state[n] for n in names[cut:]}, names[cut - 1], names[cut]


def main():
    check_against_torchvision()
    os.makedirs(OUT_DIR, exist_ok=True)
    g = torch.Generator().manual_seed(12)
    for case, spec in CASES.items():
        o = spec["options"]
        model = ResNet18(o["width"], o["numClasses"], variant=o["variant"])
        randomize(model, g, side=spec["x"][-1])
        half = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in half.items()})
        x = torch.randn(*spec["x"], generator=g)
        with torch.no_grad():
            out32 = model.eval()(x)
            out64 = model.double().eval()(x.double())
        err = rel_err(out32, out64)
        a, b, last1, first2 = split_state(half)
        meta = {"source": "scripts/make_resnet_forward_check.py", "torch": torch.__version__, "case": case}
        p = lambda name: os.path.join(OUT_DIR, f"{case}.{name}.safetensors")
        for i, shard in enumerate((a, b), 1):
            save_safetensors(p(f"weights-{i}"), {k: np_of(v) for k, v in shard.items()}, dict(meta, shard=f"{i} of 2"))
        save_safetensors(p("input"), {"x": np_of(x)}, meta)
        save_safetensors(
            p("expected"),
            {"out": np_of(out32), "out_f64": np_of(out64)},
            dict(meta, options=json.dumps(o), mode="eval", precision="out: float32 torch on the F16 weights; out_f64: float64", f32_vs_f64=f"{err:.2e}"),
        )
        total = sum(os.path.getsize(p(n)) for n in ("weights-1", "weights-2", "input", "expected"))
        print(f"{case}: {len(a)} + {len(b)} tensors (cut between {last1} and {first2}), logits scale {float(out32.abs().max()):.3g}, "
              f"f32 vs f64 {err:.2e}, {total} bytes")
        assert np.isfinite(np_of(out32)).all()


if __name__ == "__main__":
    main()
