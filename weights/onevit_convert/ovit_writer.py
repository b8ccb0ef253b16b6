"""Writes a .ovit file exactly as weights/FORMAT.md lays it out.

The whole file is built in order: fixed 32-byte header, metadata, tensor table,
zero padding to data_offset (a multiple of 64), then each tensor at a 64-aligned
offset with zero padding in between. The data is written in one pass, its CRC
computed on the way; the fixed header, which holds both CRCs, is written last.
The file goes to a temporary name that is renamed at the end, so a failed
conversion never leaves a truncated model behind.
"""

import os
import re
import struct
import zlib

import numpy as np

from .dtypes import encode
from .metadata import F32, F32_ARRAY, STRING, STRING_ARRAY, U32

MAGIC = b"ONEVIT\x00\x01"
# Version 2: a file that names features (arch.features); files without stay version 1, byte for byte.
VERSION, FEATURES_VERSION = 1, 2
ALIGN = 64
_KEY = re.compile(r"[a-z0-9_.]{1,256}")


def _align(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _string(text):
    raw = text.encode("utf-8")
    return struct.pack("<I", len(raw)) + raw


def encode_metadata(entries):
    out = [struct.pack("<I", len(entries))]
    seen = set()
    for key, kind, value in entries:
        if not _KEY.fullmatch(key) or key in seen:
            raise ValueError(f"metadata key {key!r} is invalid or repeated")
        seen.add(key)
        out.append(_string(key) + struct.pack("<I", kind))
        if kind == U32:
            out.append(struct.pack("<I", value))
        elif kind == F32:
            out.append(struct.pack("<f", value))
        elif kind == STRING:
            out.append(_string(value))
        elif kind == F32_ARRAY:
            out.append(struct.pack("<I", len(value)) + struct.pack(f"<{len(value)}f", *value))
        elif kind == STRING_ARRAY:
            out.append(struct.pack("<I", len(value)) + b"".join(_string(v) for v in value))
        else:
            raise ValueError(f"metadata type {kind} for {key!r}")
    return b"".join(out)


def _layout(tensors, dtype):
    """[(name, shape, dtype code, stored bytes as an array, offset)]: offsets 64-aligned,
    increasing, no overlap."""
    placed, offset = [], 0
    for name, array in tensors:
        shape = np.shape(array)
        name_bytes = name.encode("utf-8")
        if not 1 <= len(name_bytes) <= 256 or not 1 <= len(shape) <= 4 or 0 in shape:
            raise ValueError(f"tensor {name!r} {shape} cannot be stored")
        code, stored = encode(name, array, dtype)
        placed.append((name, shape, code, stored, offset))
        offset = _align(offset + stored.nbytes)
    return placed


def encode_tensor_table(placed):
    out = [struct.pack("<I", len(placed))]
    for name, shape, code, stored, offset in placed:
        out.append(_string(name) + struct.pack("<II", code, len(shape)))
        out.append(struct.pack(f"<{len(shape)}Q", *shape))
        out.append(struct.pack("<QQ", offset, stored.nbytes))
    return b"".join(out)


# A tensor not in C order is laid out this many bytes at a time: pieces the CRC and the write
# read again from the cache.
PIECE = 1 << 20


def _data_chunks(placed):
    """The bytes of [data_offset, EOF): each tensor, then zeros up to the next one's offset."""
    position = 0
    for _, _, _, stored, offset in placed:
        if offset > position:
            yield bytes(offset - position)
        if stored.flags.c_contiguous:
            yield memoryview(stored).cast("B")  # no copy of the (possibly large) weights
        else:  # a view (an ONNX weight, transposed): its rows, a few at a time
            rows = max(1, PIECE // stored[0].nbytes)
            for start in range(0, stored.shape[0], rows):
                yield memoryview(np.ascontiguousarray(stored[start:start + rows])).cast("B")
        position = offset + stored.nbytes


def write_ovit(path, entries, tensors, dtype="f32"):
    """entries: [(key, type, value)] (metadata.py); tensors: [(name, array)] in file order;
    dtype: how linear weights are stored (dtypes.py)."""
    placed = _layout(tensors, dtype)
    header = encode_metadata(entries) + encode_tensor_table(placed)
    data_offset = _align(32 + len(header))
    header += bytes(data_offset - 32 - len(header))
    version = FEATURES_VERSION if any(key == "arch.features" for key, _, _ in entries) else VERSION

    temporary = f"{path}.tmp{os.getpid()}"
    try:
        with open(temporary, "wb") as f:
            f.write(bytes(32))
            f.write(header)
            data_crc = 0
            for chunk in _data_chunks(placed):
                data_crc = zlib.crc32(chunk, data_crc)
                f.write(chunk)
            # The header checksum covers everything after itself up to the data: bytes [16, data_offset).
            after_checksum = struct.pack("<QII", data_offset, data_crc, 0) + header
            f.seek(0)
            f.write(MAGIC + struct.pack("<II", version, zlib.crc32(after_checksum)) + after_checksum[:16])
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return os.path.getsize(path)
