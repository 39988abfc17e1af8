"""PyTorch side of bench/amp.ts on the same card (for scripts/gpu-run.sh): matmul at the given sizes
in f32 with TF32 off (cuBLAS f32, what our f32 kernel computes) and in f16 (cuBLAS f16, tensor cores),
and the CIFAR ResNet-18 training step (SGD momentum 0.9, wd 5e-4, mean CE, as bench/resnet_torch.py)
under bf16 autocast. Prints a table and writes JSON. Needs CUDA.
Usage: python3 bench/amp_torch.py --sizes 4096 --batch 128 --out results.json"""
import argparse, json, time
import torch, torch.nn as nn, torchvision

p = argparse.ArgumentParser()
p.add_argument('--sizes', default='4096')
p.add_argument('--batch', type=int, default=128)
p.add_argument('--min-time', type=float, default=2.0)
p.add_argument('--out', default='bench/results/amp_torch.json')
a = p.parse_args()
dev = 'cuda'
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def timed(fn):
    """Warm up, then call repeatedly for min_time seconds; mean seconds per call."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < a.min_time:
        fn()
        n += 1
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / n


matmul = []
for n in map(int, a.sizes.split(',')):
    for dtype in (torch.float32, torch.float16):
        x = torch.randn(n, n, device=dev, dtype=dtype)
        y = torch.randn(n, n, device=dev, dtype=dtype)
        sec = timed(lambda: torch.mm(x, y))
        matmul.append({'n': n, 'dtype': str(dtype).replace('torch.', ''), 'ms': sec * 1e3, 'tflops': 2 * n**3 / sec / 1e12})

m = torchvision.models.resnet18(num_classes=10)
m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
m.maxpool = nn.Identity()
m = m.to(dev).train()
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
B = a.batch
xb = torch.randn(B, 3, 32, 32, device=dev)
yb = torch.arange(B, device=dev) % 10


def step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast('cuda', dtype=torch.bfloat16):
        loss = nn.functional.cross_entropy(m(xb), yb)
    loss.backward()
    opt.step()


sec = timed(step)
resnet = {'batch': B, 'autocast': 'bf16', 'msPerStep': sec * 1e3, 'imagesPerSec': B / sec}
print(f"device: {torch.cuda.get_device_name()} torch {torch.__version__}")
print('| case | ms | TFLOP/s |\n|---|---:|---:|')
for r in matmul:
    print(f"| matmul {r['n']}^3 {r['dtype']} | {r['ms']:.3f} | {r['tflops']:.1f} |")
print(f"| resnet18 cifar step b{B} bf16 autocast | {resnet['msPerStep']:.2f} | |")
json.dump({'device': torch.cuda.get_device_name(), 'torch': torch.__version__,
           'date': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), 'matmul': matmul, 'resnet_bf16': resnet},
          open(a.out, 'w'), indent=2)
