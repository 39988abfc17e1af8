#!/usr/bin/env python3
"""Writes test/fixtures/torch_small.safetensors (a few small tensors of the dtypes the TypeScript reader
handles: f32 2x3, f16, bf16, i64, i32, a scalar, empty tensors, plus metadata) with PyTorch and the
`safetensors` Python package, the same tensors without metadata (torch_small_nometa.safetensors, for
a byte-for-byte comparison of the writer), and test/fixtures/torch_small.json with the expected values.

Needs: PyTorch (Debian 12: apt-get install -y python3-torch) and the safetensors package (not packaged
in Debian 12; use a wheel, e.g. PYTHONPATH=<unpacked safetensors wheel>). Without the package it
writes the file itself from the format's documentation (8-byte little-endian header length, JSON
header ordered by dtype (larger first) then name, padded with spaces to 8 bytes, raw little-endian data) and records
"writer": "manual" in the metadata.

Run from the repository root: /usr/bin/python3 scripts/make_safetensors_fixture.py
"""
import json
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures")


def tensors():
    return {
        "weight_f32": torch.tensor([[1.0, -2.5, 3.25], [0.1, 1e-30, -7.0e20]], dtype=torch.float32),
        # 65504 = largest half, 6.103515625e-05 = smallest normal, 5.960464477539063e-08 = smallest subnormal
        "half": torch.tensor([1.5, -2.25, 65504.0, 6.103515625e-05, 5.960464477539063e-08, -0.0], dtype=torch.float16),
        "brain": torch.tensor([[1.0, -3.140625], [1.0e30, 0.0078125]], dtype=torch.bfloat16),
        "ids": torch.tensor([1, -2, 2**40 + 3], dtype=torch.int64),
        "counts": torch.tensor([7, -2147483648, 2147483647], dtype=torch.int32),
        "scalar": torch.tensor(3.25, dtype=torch.float32),
        "empty": torch.zeros((0,), dtype=torch.float32),
        "empty_2d": torch.zeros((2, 0), dtype=torch.float32),
    }


METADATA = {"format": "pt", "source": "scripts/make_safetensors_fixture.py"}

DTYPE_NAME = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
}


def write_manual(ts, path, metadata):
    header = {"__metadata__": metadata} if metadata else {}
    blobs = []
    offset = 0
    order = ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"]
    for name in sorted(ts, key=lambda n: (-order.index(DTYPE_NAME[ts[n].dtype]), n)):
        t = ts[name].contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": DTYPE_NAME[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)


def main():
    ts = tensors()
    path = os.path.join(OUT, "torch_small.safetensors")
    try:
        from safetensors.torch import save_file, load_file

        import safetensors

        meta = dict(METADATA, writer=f"safetensors {safetensors.__version__}, torch {torch.__version__}")
        save_file(ts, path, metadata=meta)
        # without metadata the library's output is deterministic: the TS writer must match it byte for byte
        save_file(ts, os.path.join(OUT, "torch_small_nometa.safetensors"))
        back = load_file(path)
        for k, v in ts.items():
            assert torch.equal(back[k], v), k
    except ImportError:
        meta = dict(METADATA, writer="manual")
        write_manual(ts, path, meta)
    expected = {"metadata": meta, "tensors": {}}
    for name, t in ts.items():
        values = t.flatten().tolist() if t.dtype not in (torch.float16, torch.bfloat16) else t.float().flatten().tolist()
        if t.dtype == torch.int64:
            values = [str(v) for v in values]  # beyond float64's exact integers in JSON readers
        bits = None
        if t.dtype in (torch.float16, torch.bfloat16):
            bits = t.flatten().view(torch.int16).tolist()
            bits = [b & 0xFFFF for b in bits]
        entry = {"dtype": DTYPE_NAME[t.dtype], "shape": list(t.shape), "values": values}
        if bits is not None:
            entry["bits"] = bits
        expected["tensors"][name] = entry
    with open(os.path.join(OUT, "torch_small.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes), writer: {meta['writer']}")


if __name__ == "__main__":
    main()
