"""Shared by the fixture scripts (scripts/make_*_golden.py, make_resnet_forward_check.py) and
bench/torch_unlearn.py: safetensors read/write without the `safetensors` package, torch -> numpy
conversion and the relative error the golden tests use. It builds no model and runs no step.

The writer lays a file out as the Python/Rust library's save_file does: an 8-byte little-endian header
length, a compact JSON header ({"__metadata__": ..., then one entry per tensor in data order}) padded
with spaces to a multiple of 8, then the raw little-endian data, tensors ordered by dtype (larger
first, the library's Dtype order) and then by name; 0-d tensors keep shape []. The one difference
from the library is the order of the metadata keys (the library's is a hash map's; here it is the
caller's insertion order, so reruns are byte-identical).
"""
import json
import struct

import numpy as np

# the library's Dtype enum order; entries are written largest first
DTYPE_ORDER = ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"]
NAME_OF = {
    np.dtype("bool"): "BOOL",
    np.dtype("uint8"): "U8",
    np.dtype("int8"): "I8",
    np.dtype("int16"): "I16",
    np.dtype("uint16"): "U16",
    np.dtype("float16"): "F16",
    np.dtype("int32"): "I32",
    np.dtype("uint32"): "U32",
    np.dtype("float32"): "F32",
    np.dtype("float64"): "F64",
    np.dtype("int64"): "I64",
    np.dtype("uint64"): "U64",
}
DTYPE_OF = {v: k for k, v in NAME_OF.items()}


def save_safetensors(path, tensors, metadata=None):
    """Writes {name: numpy array} (any dtype in NAME_OF) and a {str: str} metadata dict to `path`."""
    arrays = {}
    for name, a in tensors.items():
        a = np.asarray(a)
        if a.dtype not in NAME_OF:
            raise ValueError(f"tensor '{name}': dtype {a.dtype} has no safetensors name")
        arrays[name] = a
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ValueError(f"metadata {k!r}: keys and values must be strings")
    order = sorted(arrays, key=lambda n: (-DTYPE_ORDER.index(NAME_OF[arrays[n].dtype]), n))
    header = {"__metadata__": dict(metadata)} if metadata else {}
    blobs, off = [], 0
    for name in order:
        a = arrays[name]
        # np.ascontiguousarray would turn a 0-d array into shape [1]; keep the rank
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
        header[name] = {"dtype": NAME_OF[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    js = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))
    return len(js) + 8 + off


def load_safetensors(path):
    """Reads a safetensors file: ({name: numpy array}, metadata dict); BF16 comes back as float32.
    Checks sizes and offsets."""
    with open(path, "rb") as f:
        b = f.read()
    if len(b) < 8:
        raise ValueError(f"{path}: {len(b)} bytes, too short for a safetensors header")
    n = struct.unpack("<Q", b[:8])[0]
    if 8 + n > len(b):
        raise ValueError(f"{path}: header length {n} runs past the end of the file ({len(b)} bytes)")
    header = json.loads(b[8 : 8 + n].decode("utf-8"))
    data = memoryview(b)[8 + n :]
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, e in header.items():
        if e["dtype"] == "BF16":  # numpy has no bfloat16: widen the bits to float32
            lo, hi = e["data_offsets"]
            bits = np.frombuffer(data[lo:hi], dtype="<u2").astype(np.uint32) << 16
            out[name] = bits.view(np.float32).reshape(e["shape"])
            continue
        if e["dtype"] not in DTYPE_OF:
            raise ValueError(f"{path}: tensor '{name}' has unsupported dtype {e['dtype']}")
        dt = DTYPE_OF[e["dtype"]].newbyteorder("<")
        lo, hi = e["data_offsets"]
        count = int(np.prod(e["shape"], dtype=np.int64))
        if hi - lo != count * dt.itemsize or hi > len(data):
            raise ValueError(f"{path}: tensor '{name}' {e['dtype']}{e['shape']} does not fit data_offsets [{lo}, {hi}]")
        out[name] = np.frombuffer(data[lo:hi], dtype=dt).reshape(e["shape"]).astype(dt.newbyteorder("="))
    return out, meta


def np_of(t, dtype=None):
    """A torch tensor as a numpy array of the same shape (0-d stays 0-d); float64 is stored as float32
    unless `dtype` says otherwise."""
    a = t.detach().cpu().contiguous().numpy()
    if dtype is not None:
        return a.astype(dtype)
    return a.astype(np.float32) if a.dtype == np.float64 else a


def rel_err(a, b):
    """max|a - b| / max|b| (b the reference), as the TypeScript golden tests measure."""
    a = np.asarray(a.detach().cpu() if hasattr(a, "detach") else a, dtype=np.float64)
    b = np.asarray(b.detach().cpu() if hasattr(b, "detach") else b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def worst(pairs):
    """(error, name) of the largest rel_err over {name: (actual, reference)}."""
    return max((rel_err(a, b), n) for n, (a, b) in pairs.items())
