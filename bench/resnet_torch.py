"""PyTorch reference for bench/resnet.ts: the same ResNet-18 (CIFAR stem: 3x3 stride-1 conv, no
max-pool) training step (SGD momentum 0.9, wd 5e-4, mean CE) on the same card, f32 with TF32 off
(our engine computes in f32), and with TF32 on for context. Prints a table and writes JSON.
Usage: python3 bench/resnet_torch.py --batch 32,128 --out results.json"""
import argparse, json, time
import torch, torch.nn as nn, torchvision

p = argparse.ArgumentParser()
p.add_argument('--batch', default='32,128')
p.add_argument('--width', type=int, default=64)
p.add_argument('--out', default='bench/results/resnet_torch.json')
a = p.parse_args()
dev = 'cuda'
rows = []
for tf32 in (False, True):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    for B in map(int, a.batch.split(',')):
        m = torchvision.models.resnet18(num_classes=10)
        m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        m.maxpool = nn.Identity()
        m = m.to(dev).train()
        opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        x = torch.randn(B, 3, 32, 32, device=dev)
        y = torch.arange(B, device=dev) % 10
        def step():
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
            return loss
        for _ in range(5):
            step()
        torch.cuda.synchronize()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 3:
            step(); n += 1
        torch.cuda.synchronize()
        sec = (time.perf_counter() - t0) / n
        rows.append({'batch': B, 'tf32': tf32, 'msPerStep': sec * 1e3, 'imagesPerSec': B / sec})
print(f"device: {torch.cuda.get_device_name()} torch {torch.__version__}")
print('| batch | tf32 | ms/step | images/s |')
print('|---:|---|---:|---:|')
for r in rows:
    print(f"| {r['batch']} | {r['tf32']} | {r['msPerStep']:.2f} | {r['imagesPerSec']:.0f} |")
json.dump({'device': torch.cuda.get_device_name(), 'torch': torch.__version__, 'date': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), 'results': rows}, open(a.out, 'w'), indent=2)
