"""ResNet-18 in PyTorch with torchvision's module names and a base width, in the two stems the
TypeScript ResNet (src/models/resnet.ts) builds: 'cifar' (3x3 stride-1 conv, no max-pool) and
'imagenet' (torchvision's 7x7 stride-2 conv + 3x3 stride-2 max-pool). Used by the fixture scripts and
bench/torch_unlearn.py; torchvision's own class cannot narrow BasicBlocks below width 64. It does no
initialisation beyond PyTorch's defaults (callers set their own).

At width 64 with the 'imagenet' stem its state dict and outputs equal torchvision.models.resnet18's
(scripts/make_resnet_forward_check.py checks this each time it runs, and the 'cifar' stem against
torchvision's resnet18 with conv1 swapped for a 3x3 stride-1 conv and maxpool for an identity).
"""
import torch
import torch.nn as nn


class BasicBlock(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inp != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        idt = x if self.downsample is None else self.downsample(x)
        return self.relu(out + idt)


class ResNet18(nn.Module):
    """x [N, in_ch, H, W] -> logits [N, classes]; layer widths width * (1, 2, 4, 8)."""

    def __init__(self, width, classes, in_ch=3, variant="cifar"):
        super().__init__()
        if variant not in ("cifar", "imagenet"):
            raise ValueError(f"unknown ResNet variant '{variant}'")
        stem = (3, 1, 1) if variant == "cifar" else (7, 2, 3)
        self.conv1 = nn.Conv2d(in_ch, width, stem[0], stem[1], stem[2], bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if variant == "imagenet" else None
        inp = width
        for i, mult in enumerate([1, 2, 4, 8]):
            planes = width * mult
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(inp, planes, stride), BasicBlock(planes, planes, 1)))
            inp = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8 * width, classes)

    def features(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        if self.maxpool is not None:
            x = self.maxpool(x)
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x):
        return self.fc(self.features(x))
