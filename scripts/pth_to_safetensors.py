#!/usr/bin/env python3
"""Converts a PyTorch state-dict checkpoint (.pth / .pt) to safetensors, which this project loads
(`forward --weights`, the diffusion demo's `fidModel.weights`, `loadStateDict`). Needs only torch and
numpy (the `safetensors` package is not required). Names are kept as they are, so a checkpoint saved
from a torchvision model loads into the architecture of the same name here, e.g. pytorch-fid's
pt_inception-2015-12-05-6726825d.pth into `inception_v3` with options {"fid": true}.

  /usr/bin/python3 scripts/pth_to_safetensors.py pt_inception-2015-12-05-6726825d.pth pt_inception.safetensors

A checkpoint that wraps its state dict ({"state_dict": ...} or {"model": ...}) is unwrapped; a
"module." prefix (DataParallel) is stripped. Anything that is not a tensor is reported and skipped.
A batch norm saved before PyTorch 0.4.1 has no num_batches_tracked; as PyTorch does when it loads such
a file, the counter is added as 0 (I64), so that a strict load finds every buffer.
It only reads files you trust: torch.load unpickles.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import save_safetensors  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} in.pth out.safetensors")
    src, dst = sys.argv[1], sys.argv[2]
    obj = torch.load(src, map_location="cpu")
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        sys.exit(f"{src}: holds a {type(obj).__name__}, not a state dict")
    out, skipped = {}, []
    for name, t in obj.items():
        if not torch.is_tensor(t):
            skipped.append(name)
            continue
        name = name[len("module."):] if name.startswith("module.") else name
        t = t.detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:
            t = t.float()
        out[name] = t.numpy()
    added = [k[: -len("running_var")] + "num_batches_tracked" for k in out if k.endswith("running_var")]
    added = [k for k in added if k not in out]
    for k in added:
        out[k] = np.array(0, dtype=np.int64)
    if added:
        print(f"added num_batches_tracked = 0 to {len(added)} batch norms (an old checkpoint; PyTorch does the same on loading)")
    if skipped:
        print(f"skipped {len(skipped)} non-tensor entries: {', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}")
    tmp = dst + ".tmp"
    save_safetensors(tmp, out, {"source": os.path.basename(src)})
    os.replace(tmp, dst)  # atomic: a failed run leaves no half-written file under the name
    print(f"wrote {dst}: {len(out)} tensors")


if __name__ == "__main__":
    main()
