#!/usr/bin/env python3
"""PyTorch reference of the classification unlearning methods (FT, GA, RL, SalUn, BT, SCRUB, SFR-on) with
the SFR-on authors' CIFAR-10 settings, run on the SAME checkpoints, split and data as the engine's
experiment, so the two tables sit side by side (issue 12 part 6). It does not pretrain or retrain: the
original and RT models come from the engine's run directory (or any safetensors in torchvision ResNet-18
names), and it covers ResNet-18 only (the engine's 'cifar' and 'imagenet' stems, any width).

Each loop follows the authors' Classification/unlearn/*.py (K1nght/Unified-Unlearning-w-Remain-Geometry),
restated here, not copied:
  FT     D_r, mean CE, model.train(); SGD lr 0.01 m 0.9 wd 5e-4; 10 epochs; cosine per epoch
  GA     D_f, loss -CE with the model in EVAL mode (BN frozen); clip grad norm 0.1; SGD lr 1e-4 m 0.9
         wd 5e-4; 9 epochs; constant lr
  RL     D_r u D_f shuffled together, each forget sample with one fixed random label from the other
         classes (drawn once); SGD lr 0.003 m 0.9 wd 5e-4; 10 epochs; cosine
  SalUn  mask: model in eval mode, sum over forget batches of grad(-CE), |.|, global top 20% -> 1;
         then RL's loop with grad *= mask before each step; SGD lr 0.007 m 0.9 wd 5e-4; 10 epochs; cosine
  BT     D_r u D_f with a forget flag u; target = u softmax(bad/T) + (1-u) softmax(original/T); loss =
         F.kl_div(log_softmax(student/T), target) with its default 'mean' reduction (sum / (B C)); T = 1;
         bad teacher = a freshly initialised model; both teachers frozen in eval mode; SGD lr 0.02 m 0.9
         wd 5e-4; 10 epochs; cosine
  SCRUB  the authors' CIFAR-10 block: SGD lr 8e-5 m 0.9 wd 5e-4, 6 epochs, cosine per epoch; epoch e
         (1-based): if e <= 2 one pass over D_f minimising -KD, then one pass over D_r minimising
         0.99 CE + 0.001 KD; KD = sum KL(softmax(t/4) || softmax(s/4)) * 16 / B; student train mode,
         teacher (frozen copy of the original) eval mode. (Their smoothing term is 0 and sstart 10 > 6
         epochs, so neither the parameter-distance term nor the SWA copy has an effect; both left out.)
  SFR-on mask: model in eval mode, F_f += g^2 / (number of forget batches) with g = grad(mean CE) per
         forget batch, the same over D_r, M = (F_f + 1e-15) / (F_r + 1e-15) >= 1 per element; then 1500
         iterations of: lr_s = 0.01 (1 + cos(pi s / N)) / 2 (the optimizer's cosine over iterations);
         if s % 5 == 0: alpha_s = 25 (1 + cos(pi s / N)) / 2, a forget batch, per-sample CE l_i,
         w_i = c_i / sum c, c_i = 1 / (detach(l_i)^0.5 + 1e-15), loss = -alpha_s sum w_i l_i, backward,
         grad *= M, clip the total grad norm to 7, step; then every iteration a remain batch, mean CE,
         backward, step (no mask, no clip); model in train mode for both; one SGD (m 0.9, wd 5e-4)
Every loader: batch 128, shuffled each pass, training augmentation (random crop 32 with 4 zero-padded
pixels, horizontal flip, then normalisation) also while computing masks; metrics without augmentation,
eval mode. Cosine "per epoch" means lr_e = lr0 (1 + cos(pi e / E)) / 2 for 0-based epoch e (what the
authors' CosineAnnealingLR.step(epoch) gives).

Metrics (spec §6, the authors' evaluation code): FA / RA / TA accuracy on D_f / D_r / test; MIA entropy
form: sklearn LogisticRegression(class_weight='balanced', solver='lbfgs', multi_class='multinomial')
on the softmax entropy, D_r members, test non-members, % of D_f predicted member; MIA SVC form
(SalUn's MIA-efficacy): confidence (true-label probability), members = a seeded random subset of D_r as
large as the test set, non-members = test, SVC(C=3, gamma='auto', rbf), % of D_f predicted non-member;
D_KL = mean over D_f of KL(p_RT || p) with 1e-20 inside the logs, JS with m = (p_RT + p)/2; Avg.D = mean
|x - x_RT| over FA, RA, TA, MIA (entropy form); seconds = wall clock of the method, masks included.

Data, in the engine's order (src/unlearn/experiment-node.ts): --data is
  - the CIFAR-10 binary directory (data_batch_1..5.bin, test_batch.bin): the same bytes as the engine's
    'cifar10-bin' data, so the side-by-side is exact;
  - the JPEG image-folder archive (.tar / .tar.gz, train/<class>/*.jpg, test/<class>/*.jpg; classes and
    files sorted by code point, as torchvision's ImageFolder) decoded with PIL: the same pixels as the
    engine, whose JPEG decoder (MozJPEG/libjpeg-turbo as WASM) matched PIL on 60,000 of 60,000 images
    of the shared archive (bench/RESULTS.md);
  - or TRAIN.ugds,TEST.ugds: the engine's own decoded bytes, written once with its saveByteDataset:
      npx tsx -e "import { loadImageFolderSplits } from './src/data/image-folder-node.ts';
        import { saveByteDataset } from './src/data/cache-node.ts';
        loadImageFolderSplits('ARCHIVE', ['train', 'test'], { channels: 3 }).then((s) => {
        saveByteDataset(s.train, 'train.ugds'); saveByteDataset(s.test, 'test.ugds'); process.exit(0); });"
    (185 MB for CIFAR-10; too big to carry to the GPU machine, where the archive must be decoded there);
then --train-limit / --test-limit keep n evenly spaced samples (index floor(k len / n)), as the engine's
trainLimit / testLimit do. Normalisation mean (0.4914, 0.4822, 0.4465), std (0.2023, 0.1994, 0.201).
--split is the engine's split.json (its n and FNV-1a hash are checked against the data), a JSON index
array, or a text list of indices.

Usage (the engine run's directory holds split.json, pretrained.safetensors, retrain.safetensors):
  python3 bench/torch_unlearn.py --run runs/cifar10-gpu --data .gpu-data/cifar10-jpeg.tar.gz \
      [--methods FT,GA,...] [--override '{"SFR-on": {"iterations": 20}, "*": {"epochs": 1}}'] \
      [--device cuda] [--out results.json] [--save-dir DIR] [--train-limit N --test-limit N]
or name the three files with --pretrained, --rt and --split instead of --run. Prints the table and
writes JSON (--out, default <run>/torch_unlearn.json).
"""
import argparse
import copy
import json
import math
import os
import sys
import tarfile
import time
import warnings
from io import BytesIO

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from fixture_io import load_safetensors, save_safetensors  # noqa: E402
from torch_resnet import ResNet18  # noqa: E402

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2023, 0.1994, 0.201)
BATCH = 128
# BT uses F.kl_div's 'mean' reduction on purpose (the authors' loss); silence PyTorch's advice about it
warnings.filterwarnings("ignore", message="reduction: 'mean' divides the total loss")
SGD = lambda lr: {"kind": "sgd", "lr": lr, "momentum": 0.9, "weight_decay": 5e-4}
SETTINGS = {
    "FT": {"opt": SGD(0.01), "epochs": 10, "schedule": "cosine"},
    "GA": {"opt": SGD(1e-4), "epochs": 9, "schedule": "constant", "clip": 0.1},
    "RL": {"opt": SGD(0.003), "epochs": 10, "schedule": "cosine"},
    "SalUn": {"opt": SGD(0.007), "epochs": 10, "schedule": "cosine", "threshold": 0.2},
    "BT": {"opt": SGD(0.02), "epochs": 10, "schedule": "cosine", "tau": 1.0},
    "SCRUB": {"opt": SGD(8e-5), "epochs": 6, "schedule": "cosine", "msteps": 2, "T": 4.0, "gamma": 0.99, "alpha": 0.001},
    "SFR-on": {"opt": SGD(0.01), "iterations": 1500, "forget_freq": 5, "alpha0": 25.0, "max_norm": 7.0, "lambda": 0.5, "gamma": 1.0},
}


def fail(msg):
    raise SystemExit(f"torch_unlearn: {msg}")


# ------------------------------------------------------------------------------------------------
# data


def read_cifar_binary(d):
    sub = os.path.join(d, "cifar-10-batches-bin")
    base = sub if not os.path.exists(os.path.join(d, "data_batch_1.bin")) and os.path.exists(os.path.join(sub, "data_batch_1.bin")) else d

    def part(names):
        recs = []
        for n in names:
            p = os.path.join(base, n)
            if not os.path.exists(p):
                fail(f"{p} does not exist")
            b = np.fromfile(p, dtype=np.uint8)
            if b.size % 3073:
                fail(f"{p}: {b.size} bytes is not a whole number of 3073-byte records")
            recs.append(b.reshape(-1, 3073))
        r = np.concatenate(recs)
        return r[:, 1:].reshape(-1, 3, 32, 32).copy(), r[:, 0].astype(np.int64)

    return part([f"data_batch_{i}.bin" for i in range(1, 6)]), part(["test_batch.bin"])


def read_image_folder_tar(path):
    """train/<class>/<file> and test/<class>/<file> of a tar(.gz); classes and files by code point."""
    from PIL import Image

    files = {"train": {}, "test": {}}
    with tarfile.open(path, "r:*") as tf:
        for m in tf:
            if not m.isfile():
                continue
            parts = m.name.lstrip("./").split("/")
            if len(parts) < 3 or parts[0] not in files or parts[1].startswith("."):
                continue
            base = parts[-1]
            if base.startswith(".") or not base.lower().endswith((".jpg", ".jpeg", ".png")):
                continue
            files[parts[0]].setdefault(parts[1], []).append((m.name, tf.extractfile(m).read()))
    out = []
    for split in ("train", "test"):
        classes = sorted(files[split])
        if not classes:
            fail(f"{path}: no {split}/<class>/ folders")
        imgs, labels = [], []
        for label, c in enumerate(classes):
            for name, data in sorted(files[split][c]):
                a = np.asarray(Image.open(BytesIO(data)).convert("RGB"))
                if a.shape != (32, 32, 3):
                    fail(f"{path}/{name}: image is {a.shape}, expected 32x32 RGB")
                imgs.append(a.transpose(2, 0, 1))
                labels.append(label)
        out.append((np.stack(imgs), np.array(labels, dtype=np.int64)))
    if sorted(files["train"]) != sorted(files["test"]):
        fail(f"{path}: train and test have different class folders")
    return out


def read_ugds(path):
    """A byte-image data set the engine wrote with saveByteDataset (src/data/cache-node.ts):
    'UGDS' | u32 LE header length | header JSON | pad to 4 | i32 LE labels [n] | uint8 pixels [n, C, H, W]."""
    b = np.fromfile(path, dtype=np.uint8)
    if len(b) < 8 or bytes(b[:4]) != b"UGDS":
        fail(f"{path} is not a dataset cache written by the engine (no 'UGDS' magic)")
    n_head = int(b[4:8].view("<u4")[0])
    h = json.loads(bytes(b[8 : 8 + n_head]).decode())
    at = 8 + n_head + (-(8 + n_head)) % 4
    n, shape = h["n"], h["shape"]
    if len(b) != at + 4 * n + n * int(np.prod(shape)):
        fail(f"{path}: size {len(b)} does not match its header ({n} images of {shape})")
    labels = b[at : at + 4 * n].view("<i4").astype(np.int64)
    return b[at + 4 * n :].reshape(n, *shape).copy(), labels


def read_data(spec):
    """(train, test) as ((uint8 [n, 3, H, W], int64 [n]), ...) from a --data argument."""
    if "," in spec:
        paths = spec.split(",")
        if len(paths) != 2 or not all(p.endswith(".ugds") for p in paths):
            fail(f"--data {spec}: a pair must be TRAIN.ugds,TEST.ugds")
        return read_ugds(paths[0]), read_ugds(paths[1])
    if os.path.isdir(spec):
        return read_cifar_binary(spec)
    if spec.endswith((".tar", ".tar.gz", ".tgz")):
        return read_image_folder_tar(spec)
    fail(f"--data {spec}: neither a CIFAR-10 binary directory, a .tar/.tar.gz image folder nor TRAIN.ugds,TEST.ugds")


def limit(images, labels, n):
    """n evenly spaced samples (the engine's trainLimit / testLimit)."""
    if not n or n >= len(labels):
        return images, labels
    idx = (np.arange(n) * len(labels)) // n
    return images[idx], labels[idx]


def split_hash(forget_sorted, n):
    """FNV-1a 64 over n then each sorted forget index, 4 little-endian bytes each (split.ts)."""
    h = 0xCBF29CE484222325
    for v in [n, *forget_sorted]:
        for s in range(0, 32, 8):
            h ^= (int(v) >> s) & 0xFF
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def read_split(path, n):
    text = open(path).read().strip()
    if text.startswith("{") or text.startswith("["):
        obj = json.loads(text)
        if isinstance(obj, dict):
            if "forget" not in obj:
                fail(f"{path}: JSON object has no 'forget' array")
            if "n" in obj and obj["n"] != n:
                fail(f"{path}: the split is of n = {obj['n']} samples, the training data has {n} (check --train-limit)")
            forget = obj["forget"]
        else:
            obj, forget = {}, obj
    else:
        obj = {}
        forget = [int(t) for line in text.splitlines() for t in line.split("#")[0].replace(",", " ").split()]
    forget = np.array(sorted(int(i) for i in forget), dtype=np.int64)
    if len(forget) == 0 or len(forget) >= n or forget[0] < 0 or forget[-1] >= n or len(np.unique(forget)) != len(forget):
        fail(f"{path}: forget indices must be distinct, in [0, {n}), and leave a remain set")
    h = split_hash(forget, n)
    if "hash" in obj and obj["hash"] != h:
        fail(f"{path}: stored hash {obj['hash']} does not match the indices ({h})")
    remain = np.setdiff1d(np.arange(n), forget)
    return forget, remain, h


class Loader:
    """Batches of (x normalised [B, 3, H, W], y [B], flag [B]) over `indices` of a uint8 device tensor."""

    def __init__(self, images, labels, indices, device, shuffle, augment, seed, flags=None, batch=BATCH):
        self.images, self.labels, self.device = images, labels, device
        self.indices = torch.as_tensor(indices, dtype=torch.long)
        self.flags = flags
        self.shuffle, self.augment, self.batch = shuffle, augment, batch
        self.gen = torch.Generator().manual_seed(seed)
        self.mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(STD, device=device).view(1, 3, 1, 1)

    def __len__(self):
        return (len(self.indices) + self.batch - 1) // self.batch

    def __iter__(self):
        order = self.indices[torch.randperm(len(self.indices), generator=self.gen)] if self.shuffle else self.indices
        for k in range(0, len(order), self.batch):
            idx = order[k : k + self.batch].to(self.device)
            x = self.images[idx]
            if self.augment:
                x = self.crop_flip(x)
            x = (x.float() / 255 - self.mean) / self.std
            yield x, self.labels[idx], (self.flags[idx] if self.flags is not None else None)

    def crop_flip(self, x):
        B, C, H, W = x.shape
        p = F.pad(x, (4, 4, 4, 4))
        i = torch.randint(0, 9, (B,), generator=self.gen).to(x.device)
        j = torch.randint(0, 9, (B,), generator=self.gen).to(x.device)
        flip = (torch.rand(B, generator=self.gen) < 0.5).to(x.device)
        rows = (i[:, None] + torch.arange(H, device=x.device))[:, None, :, None]
        cols = j[:, None] + torch.arange(W, device=x.device)
        cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]
        return p[torch.arange(B, device=x.device)[:, None, None, None], torch.arange(C, device=x.device)[None, :, None, None], rows, cols]


def cycle(loader):
    while True:
        yield from loader


# ------------------------------------------------------------------------------------------------
# models


def load_model(path, device):
    t, meta = load_safetensors(path)
    if "conv1.weight" not in t or "fc.weight" not in t:
        fail(f"{path}: not a ResNet-18 state dict in torchvision names (no conv1.weight / fc.weight)")
    w = t["conv1.weight"].shape
    variant = {3: "cifar", 7: "imagenet"}.get(w[2]) or fail(f"{path}: conv1 kernel {w[2]} is neither 3 (cifar) nor 7 (imagenet)")
    model = ResNet18(w[0], t["fc.weight"].shape[0], in_ch=w[1], variant=variant)
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(t)), sorted(set(t) - set(own))
    if missing or unexpected:
        fail(f"{path}: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}")
    state = {}
    for k, v in own.items():
        a = torch.from_numpy(np.ascontiguousarray(t[k]))
        if a.numel() != v.numel():
            fail(f"{path}: {k} has shape {list(a.shape)}, the model needs {list(v.shape)}")
        state[k] = a.reshape(v.shape).to(v.dtype)  # e.g. an I32 [1] counter into torch's int64 []
    model.load_state_dict(state, strict=True)
    return model.to(device), {"width": w[0], "variant": variant, "classes": t["fc.weight"].shape[0], "metadata": meta}


def make_optimizer(model, spec):
    if spec["kind"] == "sgd":
        return torch.optim.SGD(model.parameters(), spec["lr"], momentum=spec["momentum"], weight_decay=spec["weight_decay"])
    if spec["kind"] == "adamw":
        return torch.optim.AdamW(model.parameters(), spec["lr"], weight_decay=spec["weight_decay"])
    fail(f"unknown optimizer {spec['kind']}")


def set_lr(opt, lr):
    for g in opt.param_groups:
        g["lr"] = lr


def cosine(base, s, n):
    return base * (1 + math.cos(math.pi * s / n)) / 2


def kd_loss(student, teacher, T):
    """SCRUB's DistillKL: sum KL(softmax(t/T) || softmax(s/T)) * T^2 / B."""
    return F.kl_div(F.log_softmax(student / T, dim=1), F.softmax(teacher / T, dim=1), reduction="sum") * T * T / student.shape[0]


def apply_mask(model, mask):
    for n, p in model.named_parameters():
        if p.grad is not None:
            p.grad.mul_(mask[n])


# ------------------------------------------------------------------------------------------------
# masks


def salun_mask(model, forget_loader, th):
    model.eval()
    acc = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for x, y, _ in forget_loader:
        model.zero_grad()
        (-F.cross_entropy(model(x), y)).backward()
        for n, p in model.named_parameters():
            acc[n] += p.grad
    flat = torch.cat([a.abs().flatten() for a in acc.values()])
    keep = torch.zeros_like(flat)
    keep[torch.topk(flat, int(len(flat) * th)).indices] = 1
    mask, at = {}, 0
    for n, a in acc.items():
        mask[n] = keep[at : at + a.numel()].view_as(a)
        at += a.numel()
    return mask


def fisher_mask(model, forget_loader, remain_loader, gamma):
    model.eval()

    def fisher(loader):
        f = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
        for x, y, _ in loader:
            model.zero_grad()
            F.cross_entropy(model(x), y).backward()
            for n, p in model.named_parameters():
                f[n] += p.grad**2 / len(loader)
        return f

    ff, fr = fisher(forget_loader), fisher(remain_loader)
    return {n: ((ff[n] + 1e-15) / (fr[n] + 1e-15) >= gamma).to(ff[n].dtype) for n in ff}


def density(mask):
    return float(sum(m.sum() for m in mask.values()) / sum(m.numel() for m in mask.values()))


# ------------------------------------------------------------------------------------------------
# methods: each takes a copy of the original and the data; returns (model, steps, mask density)


def run_method(name, cfg, original, data, seed, device):
    torch.manual_seed(seed)
    model = copy.deepcopy(original)
    f_loader = data.loader("forget", seed + 11)
    r_loader = data.loader("remain", seed + 12)
    opt = make_optimizer(model, cfg["opt"])
    lr0, steps, dens = cfg["opt"]["lr"], 0, None

    def epoch_lr(e):
        set_lr(opt, cosine(lr0, e, cfg["epochs"]) if cfg.get("schedule") == "cosine" else lr0)

    def sgd_step(loss, mask=None, clip=None):
        nonlocal steps
        opt.zero_grad()
        loss.backward()
        if mask is not None:
            apply_mask(model, mask)
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        steps += 1

    if name == "FT":
        for e in range(cfg["epochs"]):
            epoch_lr(e)
            for x, y, _ in r_loader:
                model.train()
                sgd_step(F.cross_entropy(model(x), y))
    elif name == "GA":
        for e in range(cfg["epochs"]):
            epoch_lr(e)
            for x, y, _ in f_loader:
                model.eval()
                sgd_step(-F.cross_entropy(model(x), y), clip=cfg["clip"])
    elif name in ("RL", "SalUn"):
        mask = None
        if name == "SalUn":
            mask = salun_mask(model, f_loader, cfg["threshold"])
            dens = density(mask)
        mixed = data.loader("mixed", seed + 13, relabel=True, seed_labels=seed)
        for e in range(cfg["epochs"]):
            epoch_lr(e)
            for x, y, _ in mixed:
                model.train()
                sgd_step(F.cross_entropy(model(x), y), mask=mask)
    elif name == "BT":
        torch.manual_seed(seed + 7)
        bad = ResNet18(data.width, data.classes, variant=data.variant).to(device).eval()
        full = copy.deepcopy(original).eval()
        mixed = data.loader("mixed", seed + 13)
        T = cfg["tau"]
        for e in range(cfg["epochs"]):
            epoch_lr(e)
            for x, y, u in mixed:
                model.train()
                with torch.no_grad():
                    u = u.float()[:, None]
                    target = u * F.softmax(bad(x) / T, dim=1) + (1 - u) * F.softmax(full(x) / T, dim=1)
                sgd_step(F.kl_div(F.log_softmax(model(x) / T, dim=1), target, reduction="mean"))
    elif name == "SCRUB":
        teacher = copy.deepcopy(original).eval()
        T = cfg["T"]
        for e in range(cfg["epochs"]):
            epoch_lr(e)
            model.train()
            if e < cfg["msteps"]:
                for x, y, _ in f_loader:
                    with torch.no_grad():
                        t = teacher(x)
                    sgd_step(-kd_loss(model(x), t, T))
            for x, y, _ in r_loader:
                with torch.no_grad():
                    t = teacher(x)
                s = model(x)
                sgd_step(cfg["gamma"] * F.cross_entropy(s, y) + cfg["alpha"] * kd_loss(s, t, T))
    elif name == "SFR-on":
        mask = fisher_mask(model, f_loader, r_loader, cfg["gamma"])
        dens = density(mask)
        N = cfg["iterations"]
        fit, rit = cycle(f_loader), cycle(r_loader)
        for s in range(N):
            set_lr(opt, cosine(lr0, s, N))
            model.train()
            if s % cfg["forget_freq"] == 0:
                alpha = cosine(cfg["alpha0"], s, N)
                x, y, _ = next(fit)
                losses = F.cross_entropy(model(x), y, reduction="none")
                c = 1 / (losses.detach() ** cfg["lambda"] + 1e-15)
                sgd_step(-alpha * ((c / c.sum()) * losses).sum(), mask=mask, clip=cfg["max_norm"])
            x, y, _ = next(rit)
            sgd_step(F.cross_entropy(model(x), y))
    else:
        fail(f"unknown method {name}")
    return model, steps, dens


# ------------------------------------------------------------------------------------------------
# evaluation


@torch.no_grad()
def probs_of(model, loader):
    model.eval()
    return torch.cat([F.softmax(model(x), dim=1) for x, _, _ in loader]).double().cpu().numpy()


def entropy(p):
    return -np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0).sum(axis=1)


def metrics(p, data, rt_forget=None, svc_max=None, seed=0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    yf, yr, yt = data.labels_of("forget"), data.labels_of("remain"), data.labels_of("test")
    acc = lambda q, y: 100.0 * float((q.argmax(1) == y).mean())
    m = {"FA": acc(p["forget"], yf), "RA": acc(p["remain"], yr), "TA": acc(p["test"], yt)}
    X = np.concatenate([entropy(p["remain"]), entropy(p["test"])])[:, None]
    Y = np.concatenate([np.ones(len(yr)), np.zeros(len(yt))])
    lr = LogisticRegression(class_weight="balanced", solver="lbfgs", multi_class="multinomial").fit(X, Y)
    m["MIA_entropy"] = 100.0 * float(lr.predict(entropy(p["forget"])[:, None]).mean())
    conf = lambda q, y: q[np.arange(len(y)), y]
    rng = np.random.default_rng(seed)
    members = conf(p["remain"], yr)[rng.permutation(len(yr))[: len(yt)]]
    Xs = np.concatenate([members, conf(p["test"], yt)])[:, None]
    Ys = np.concatenate([np.ones(len(members)), np.zeros(len(yt))])
    if svc_max and len(Ys) > svc_max:  # stratified subsample (an approximation; off by default)
        keep = np.concatenate([rng.permutation(np.flatnonzero(Ys == c))[: svc_max // 2] for c in (0, 1)])
        Xs, Ys = Xs[keep], Ys[keep]
    svc = SVC(C=3, gamma="auto", kernel="rbf").fit(Xs, Ys)
    m["MIA_svc"] = 100.0 * float(1 - svc.predict(conf(p["forget"], yf)[:, None]).mean())
    if rt_forget is not None:
        q, r = p["forget"], rt_forget
        m["kl"] = float((r * (np.log(r + 1e-20) - np.log(q + 1e-20))).sum(1).mean())
        mid = (r + q) / 2
        m["js"] = float((0.5 * r * (np.log(r + 1e-20) - np.log(mid + 1e-20)) + 0.5 * q * (np.log(q + 1e-20) - np.log(mid + 1e-20))).sum(1).mean())
    return m


class Data:
    """The training/test images on the device, the split, and loader factories."""

    def __init__(self, train, test, forget, remain, info, device):
        self.train_x = torch.from_numpy(train[0]).to(device)
        self.train_y = torch.from_numpy(train[1]).to(device)
        self.test_x = torch.from_numpy(test[0]).to(device)
        self.test_y = torch.from_numpy(test[1]).to(device)
        self.forget, self.remain, self.device = forget, remain, device
        self.width, self.classes, self.variant = info["width"], info["classes"], info["variant"]
        self.is_forget = torch.zeros(len(train[1]), dtype=torch.long, device=device)
        self.is_forget[torch.from_numpy(forget).to(device)] = 1

    def loader(self, kind, seed, relabel=False, seed_labels=0):
        if kind == "forget":
            return Loader(self.train_x, self.train_y, self.forget, self.device, True, True, seed)
        if kind == "remain":
            return Loader(self.train_x, self.train_y, self.remain, self.device, True, True, seed)
        labels = self.train_y
        if relabel:  # one fixed random label per forget sample, uniform over the other classes
            g = np.random.default_rng(seed_labels ^ 0x524C)
            labels = self.train_y.clone()
            y = self.train_y[torch.from_numpy(self.forget).to(self.device)].cpu().numpy()
            new = (y + g.integers(1, self.classes, size=len(y))) % self.classes
            labels[torch.from_numpy(self.forget).to(self.device)] = torch.from_numpy(new).to(self.device)
        return Loader(self.train_x, labels, np.arange(len(self.train_y)), self.device, True, True, seed, flags=self.is_forget)

    def eval_loader(self, kind):
        if kind == "test":
            return Loader(self.test_x, self.test_y, np.arange(len(self.test_y)), self.device, False, False, 0, batch=256)
        return Loader(self.train_x, self.train_y, self.forget if kind == "forget" else self.remain, self.device, False, False, 0, batch=256)

    def labels_of(self, kind):
        if kind == "test":
            return self.test_y.cpu().numpy()
        return self.train_y.cpu().numpy()[self.forget if kind == "forget" else self.remain]


def outputs(model, data):
    return {k: probs_of(model, data.eval_loader(k)) for k in ("forget", "remain", "test")}


def avg_gap(m, rt):
    """Avg.D: mean |m - RT| over FA, RA, TA and the entropy-form MIA."""
    return sum(abs(m[k] - rt[k]) for k in ("FA", "RA", "TA", "MIA_entropy")) / 4


# ------------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="the engine's experiment directory (split.json, pretrained/retrain.safetensors)")
    ap.add_argument("--pretrained")
    ap.add_argument("--rt")
    ap.add_argument("--split")
    ap.add_argument("--data", required=True, help="CIFAR-10 binary directory, JPEG image-folder .tar(.gz), or TRAIN.ugds,TEST.ugds")
    ap.add_argument("--train-limit", type=int, default=0)
    ap.add_argument("--test-limit", type=int, default=0)
    ap.add_argument("--methods", default=",".join(SETTINGS))
    ap.add_argument("--override", default="{}", help='JSON {"Method" or "*": {setting: value}}')
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--svc-max-train", type=int, default=0, help="subsample the SVC MIA's training points (0 = all, exact)")
    ap.add_argument("--out")
    ap.add_argument("--save-dir", help="write each unlearned model here as safetensors (torchvision names)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    pre = a.pretrained or (a.run and os.path.join(a.run, "pretrained.safetensors"))
    rtp = a.rt or (a.run and os.path.join(a.run, "retrain.safetensors"))
    spl = a.split or (a.run and os.path.join(a.run, "split.json"))
    if not (pre and rtp and spl):
        fail("give --run DIR, or all of --pretrained, --rt and --split")
    for p in (pre, rtp, spl, *a.data.split(",")):
        if not os.path.exists(p):
            fail(f"{p} does not exist")
    methods = [m for m in a.methods.split(",") if m]
    unknown = [m for m in methods if m not in SETTINGS]
    if unknown:
        fail(f"unknown method(s) {unknown}; known: {list(SETTINGS)}")
    override = json.loads(a.override)
    settings = {}
    for m in methods:
        s = copy.deepcopy(SETTINGS[m])
        for src in (override.get("*", {}), override.get(m, {})):
            for k, v in src.items():
                if k == "lr":
                    s["opt"]["lr"] = v
                elif k in s:
                    s[k] = v
                elif src is override.get(m):
                    fail(f"{m} has no setting '{k}' (has {sorted(s)})")
        settings[m] = s

    t0 = time.perf_counter()
    device = torch.device(a.device)
    torch.backends.cudnn.benchmark = device.type == "cuda"
    train, test = read_data(a.data)
    train, test = limit(*train, a.train_limit), limit(*test, a.test_limit)
    forget, remain, h = read_split(spl, len(train[1]))
    original, info = load_model(pre, device)
    rt, rt_info = load_model(rtp, device)
    if (rt_info["width"], rt_info["variant"], rt_info["classes"]) != (info["width"], info["variant"], info["classes"]):
        fail(f"RT ({rt_info}) and pretrained ({info}) are different architectures")
    if rt_info["metadata"].get("split") not in (None, h):
        fail(f"{rtp} was trained on split {rt_info['metadata']['split']}, {spl} is {h}")
    data = Data(train, test, forget, remain, info, device)
    print(f"data: {len(train[1])} train / {len(test[1])} test, split {len(forget)} forget / {len(remain)} remain (hash {h}); "
          f"ResNet-18 {info['variant']} width {info['width']}; device {device}; {time.perf_counter() - t0:.1f} s", flush=True)

    rt_out = outputs(rt, data)
    rows = [dict(method="RT", **metrics(rt_out, data, None, a.svc_max_train, a.seed))]
    rt_m = rows[0]
    m = metrics(outputs(original, data), data, rt_out["forget"], a.svc_max_train, a.seed)
    rows.append(dict(method="Original", **m, avgGap=avg_gap(m, rt_m)))
    for name in methods:
        if device.type == "cuda":
            torch.cuda.synchronize()
        ts = time.perf_counter()
        model, steps, dens = run_method(name, settings[name], original, data, a.seed, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        secs = time.perf_counter() - ts
        m = metrics(outputs(model, data), data, rt_out["forget"], a.svc_max_train, a.seed)
        rows.append(dict(method=name, **m, avgGap=avg_gap(m, rt_m), seconds=secs, steps=steps, maskDensity=dens))
        print(f"{name}: FA {m['FA']:.2f} RA {m['RA']:.2f} TA {m['TA']:.2f} MIA {m['MIA_entropy']:.2f} / {m['MIA_svc']:.2f} "
              f"KL {m['kl']:.4f} in {secs:.1f} s ({steps} steps)", flush=True)
        if a.save_dir:
            os.makedirs(a.save_dir, exist_ok=True)
            sd = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
            save_safetensors(os.path.join(a.save_dir, f"{name}.safetensors"), sd, {"method": name, "split": h, "source": "bench/torch_unlearn.py"})

    cols = ["FA", "RA", "TA", "MIA_entropy", "MIA_svc", "avgGap", "kl", "js", "seconds"]
    print("\n| method | " + " | ".join(cols) + " |\n|" + "---|" * (len(cols) + 1))
    for r in rows:
        print(f"| {r['method']} | " + " | ".join("" if r.get(c) is None else f"{r[c]:.4f}" if c in ("kl", "js") else f"{r[c]:.2f}" for c in cols) + " |")
    result = {
        "source": "bench/torch_unlearn.py",
        "torch": torch.__version__,
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(),
        "data": {"path": a.data, "train": len(train[1]), "test": len(test[1]), "forget": len(forget), "split_hash": h},
        "model": {k: info[k] for k in ("width", "variant", "classes")},
        "settings": settings,
        "seed": a.seed,
        "rows": rows,
        "total_seconds": time.perf_counter() - t0,
    }
    out = a.out or os.path.join(a.run or ".", "torch_unlearn.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {out} ({result['total_seconds']:.1f} s in all)")


if __name__ == "__main__":
    main()
