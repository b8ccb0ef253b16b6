"""A tiny safetensors writer/reader (numpy only), for tests and tools.

Debian has no `safetensors` package, so this implements the published layout
(huggingface/safetensors README, src/tensor.rs):

    8 bytes      N, u64 little-endian: size of the JSON header
    N bytes      JSON: {"name": {"dtype": "F32", "shape": [...],
                                 "data_offsets": [begin, end]}, ...,
                        "__metadata__": {"key": "value", ...}}   (optional)
                 padded with spaces so that 8 + N is a multiple of 8
    rest         the byte buffer; offsets are relative to its start, end is
                 one past, tensors are contiguous, row-major, little-endian,
                 in increasing offset order without gaps or overlap.
"""

from __future__ import annotations

import json
import struct
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

MAX_HEADER_SIZE = 100_000_000

# safetensors dtype string -> numpy dtype (little-endian). BF16 is handled apart.
_DTYPES = {
    "BOOL": np.dtype("?"),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
    "I16": np.dtype("<i2"),
    "U16": np.dtype("<u2"),
    "F16": np.dtype("<f2"),
    "I32": np.dtype("<i4"),
    "U32": np.dtype("<u4"),
    "F32": np.dtype("<f4"),
    "I64": np.dtype("<i8"),
    "U64": np.dtype("<u8"),
    "F64": np.dtype("<f8"),
}


def _dtype_name(dt: np.dtype) -> Optional[str]:
    for name, np_dtype in _DTYPES.items():
        if np_dtype.kind == dt.kind and np_dtype.itemsize == dt.itemsize:
            return name
    return None


def _to_numpy(value) -> np.ndarray:
    """Accepts numpy arrays and torch tensors (without importing torch)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().contiguous().numpy()
    return np.array(value, copy=False, order="C")  # keeps 0-d arrays 0-d


def save_file(tensors: Mapping[str, object], path: str,
              metadata: Optional[Mapping[str, str]] = None) -> None:
    """Writes `tensors` (name -> numpy array or torch tensor) to `path`.

    Tensors are stored in sorted-name order, as the reference implementation does.
    """
    header: Dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr = _to_numpy(tensors[name])
        dtype_name = _dtype_name(arr.dtype)
        if dtype_name is None:
            raise ValueError(f"{name}: unsupported dtype {arr.dtype}")
        data = arr.astype(_DTYPES[dtype_name], copy=False).tobytes(order="C")
        header[name] = {"dtype": dtype_name, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)


def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    return (raw.astype("<u4") << 16).view("<f4")


def load_file_with_metadata(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """Reads a safetensors file: (name -> numpy array, __metadata__ dict).

    BF16 tensors are widened to float32. The layout is validated strictly.
    """
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER_SIZE or 8 + n > len(blob):
        raise ValueError(f"{path}: bad header length {n}")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    buf = memoryview(blob)[8 + n:]
    out: Dict[str, np.ndarray] = {}
    spans = []
    for name, info in header.items():
        dtype = info["dtype"]
        shape = tuple(int(d) for d in info["shape"])
        begin, end = (int(v) for v in info["data_offsets"])
        if not 0 <= begin <= end <= len(buf):
            raise ValueError(f"{path}: {name}: data_offsets out of range")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if dtype == "BF16":
            if end - begin != 2 * count:
                raise ValueError(f"{path}: {name}: size does not match shape")
            raw = np.frombuffer(buf[begin:end], dtype="<u2")
            arr = _bf16_to_f32(raw).reshape(shape)
        else:
            if dtype not in _DTYPES:
                raise ValueError(f"{path}: {name}: unsupported dtype {dtype}")
            np_dtype = _DTYPES[dtype]
            if end - begin != np_dtype.itemsize * count:
                raise ValueError(f"{path}: {name}: size does not match shape")
            arr = np.frombuffer(buf[begin:end], dtype=np_dtype).reshape(shape)
        out[name] = arr.copy()
        spans.append((begin, end, name))
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            raise ValueError(f"{path}: {name}: tensors are not contiguous")
        pos = end
    if pos != len(buf):
        raise ValueError(f"{path}: {len(buf) - pos} trailing bytes after the tensors")
    return out, {str(k): str(v) for k, v in metadata.items()}


def load_file(path: str) -> Dict[str, np.ndarray]:
    """Reads a safetensors file into name -> numpy array."""
    return load_file_with_metadata(path)[0]


def load_torch(path: str):
    """Reads a safetensors file into name -> torch tensor (a state dict)."""
    import torch
    return {k: torch.from_numpy(v) for k, v in load_file(path).items()}
