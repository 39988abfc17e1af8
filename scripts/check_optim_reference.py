# Checks the float64 Adam / AdamW / SGD update formulas that test/optim.test.ts uses as references
# against torch.optim with two parameter groups (per-group lr and weight decay), in float64.
# Usage: /usr/bin/python3 scripts/check_optim_reference.py  (needs PyTorch; prints the largest difference)
import torch, numpy as np
torch.manual_seed(0)
def adam_ref(p, g, m, v, t, lr, b1, b2, eps, wd, decoupled):
    bc1, bc2 = 1 - b1**t, 1 - b2**t
    d = g.copy()
    if decoupled: p *= (1 - lr * wd)
    else: d += wd * p
    m[:] = b1 * m + (1 - b1) * d
    v[:] = b2 * v + (1 - b2) * d * d
    p -= (lr / bc1) * m / (np.sqrt(v) / np.sqrt(bc2) + eps)
def sgd_ref(p, g, buf, lr, mom, wd):
    d = g + wd * p
    buf = d.copy() if buf is None else mom * buf + d
    p -= lr * buf
    return buf
worst = 0
for decoupled in [True, False]:
    ps = [torch.randn(7, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64), torch.randn(4, dtype=torch.float64)]
    tp = [p.clone().requires_grad_() for p in ps]
    lr, wd = 0.01, 0.1
    Opt = torch.optim.AdamW if decoupled else torch.optim.Adam
    opt = Opt([{'params': tp[:2], 'weight_decay': wd}, {'params': tp[2:], 'weight_decay': 0.0, 'lr': lr * 0.5}], lr=lr, betas=(0.8, 0.95), eps=1e-6)
    ref = [p.numpy().copy() for p in ps]; m = [np.zeros_like(r) for r in ref]; v = [np.zeros_like(r) for r in ref]
    for t in range(1, 5):
        gs = [torch.randn_like(p) for p in ps]
        for p, g in zip(tp, gs): p.grad = g.clone()
        opt.step()
        for k in range(3):
            adam_ref(ref[k], gs[k].numpy(), m[k], v[k], t, lr if k < 2 else lr * 0.5, 0.8, 0.95, 1e-6, wd if k < 2 else 0.0, decoupled)
    worst = max(worst, max(np.abs(tp[k].detach().numpy() - ref[k]).max() for k in range(3)))
ps = [torch.randn(7, dtype=torch.float64), torch.randn(4, dtype=torch.float64)]
tp = [p.clone().requires_grad_() for p in ps]
opt = torch.optim.SGD([{'params': tp[:1], 'weight_decay': 0.05}, {'params': tp[1:], 'weight_decay': 0.0, 'lr': 0.1 * 2}], lr=0.1, momentum=0.9)
ref = [p.numpy().copy() for p in ps]; bufs = [None, None]
for t in range(4):
    gs = [torch.randn_like(p) for p in ps]
    for p, g in zip(tp, gs): p.grad = g.clone()
    opt.step()
    for k in range(2): bufs[k] = sgd_ref(ref[k], gs[k].numpy(), bufs[k], 0.1 if k == 0 else 0.2, 0.9, 0.05 if k == 0 else 0.0)
worst = max(worst, max(np.abs(tp[k].detach().numpy() - ref[k]).max() for k in range(2)))
print('torch', torch.__version__, 'max |torch - reference| over Adam, AdamW, SGD with 2 groups:', worst)
