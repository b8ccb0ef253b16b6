"""Reads a .ovit file back, checking everything FORMAT.md requires of it.

Used by the tests and for checking converter output by hand; independent of the
writer's code paths so that a writer bug cannot hide behind a matching reader bug.
"""

import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from .architecture import Architecture
from .canonical import canonical_tensors
from .metadata import ARCH_KEYS, F32, F32_ARRAY, OPTIONAL_ARCH_KEYS, PREPROCESS_KEYS, QUALIFYING_ARCH_KEYS, \
    STRING, STRING_ARRAY, U32

_BOOL_FIELDS = {"qkv_bias", "attn_proj", "final_norm", "head_norm", "patch_norm"}


class FormatError(Exception):
    """The file breaks FORMAT.md."""


@dataclass
class OvitFile:
    version: int
    data_offset: int
    metadata: Dict[str, object]
    metadata_types: Dict[str, int]
    tensors: Dict[str, np.ndarray]      # in file order; bf16/int8 widened to float32
    offsets: Dict[str, int]
    order: List[str]
    dtypes: Dict[str, int] = field(default_factory=dict)  # the records' dtype codes


class _Cursor:
    def __init__(self, data, position, end):
        self.data, self.position, self.end = data, position, end

    def take(self, n):
        if self.position + n > self.end:
            raise FormatError(f"header truncated at byte {self.position} (needs {n} more)")
        chunk = self.data[self.position:self.position + n]
        self.position += n
        return chunk

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def string(self):
        (length,) = self.unpack("<I")
        return self.take(length).decode("utf-8")


def read_ovit(path, verify_data=True):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 32 or data[:8] != b"ONEVIT\x00\x01":
        raise FormatError("bad magic")
    version, header_crc, data_offset, data_crc, reserved = struct.unpack("<IIQII", data[8:32])
    if version not in (1, 2) or reserved != 0:
        raise FormatError(f"version {version}, reserved {reserved}")
    if data_offset % 64 or data_offset > len(data):
        raise FormatError(f"data_offset {data_offset}")
    if zlib.crc32(data[16:data_offset]) != header_crc:
        raise FormatError("header CRC mismatch")
    if verify_data and zlib.crc32(data[data_offset:]) != data_crc:
        raise FormatError("data CRC mismatch")

    cursor = _Cursor(data, 32, data_offset)
    metadata, types = {}, {}
    (count,) = cursor.unpack("<I")
    for _ in range(count):
        key = cursor.string()
        if not re.fullmatch(r"[a-z0-9_.]{1,256}", key) or key in metadata:
            raise FormatError(f"bad or repeated metadata key {key!r}")
        (kind,) = cursor.unpack("<I")
        if kind == U32:
            value = cursor.unpack("<I")[0]
        elif kind == F32:
            value = cursor.unpack("<f")[0]
        elif kind == STRING:
            value = cursor.string()
        elif kind == F32_ARRAY:
            (n,) = cursor.unpack("<I")
            value = list(cursor.unpack(f"<{n}f"))
        elif kind == STRING_ARRAY:
            (n,) = cursor.unpack("<I")
            value = [cursor.string() for _ in range(n)]
        else:
            raise FormatError(f"unknown metadata type {kind} for {key}")
        metadata[key], types[key] = value, kind

    tensors, offsets, order, dtypes = {}, {}, [], {}
    (count,) = cursor.unpack("<I")
    previous_end = 0
    for _ in range(count):
        name = cursor.string()
        if not 1 <= len(name.encode("utf-8")) <= 256 or name in tensors:
            raise FormatError(f"bad or repeated tensor name {name!r}")
        dtype, ndim = cursor.unpack("<II")
        if dtype not in (0, 1, 2) or not 1 <= ndim <= 4 or (dtype != 0 and ndim != 2):
            raise FormatError(f"tensor {name}: dtype {dtype}, ndim {ndim}")
        dims = cursor.unpack(f"<{ndim}Q")
        offset, nbytes = cursor.unpack("<QQ")
        count = int(np.prod(dims))
        want = (count * 4, count * 2, -(-count // 64) * 64 + dims[0] * 4)[dtype]
        if any(d < 1 for d in dims) or nbytes != want:
            raise FormatError(f"tensor {name}: dims {dims}, dtype {dtype}, nbytes {nbytes}")
        if offset % 64 or offset < previous_end or data_offset + offset + nbytes > len(data):
            raise FormatError(f"tensor {name}: offset {offset} misaligned, out of order or outside")
        previous_end = offset + nbytes
        start = data_offset + offset
        tensors[name] = _widen(data, start, dtype, dims)
        dtypes[name] = dtype
        offsets[name] = offset
        order.append(name)
    if any(data[cursor.position:data_offset]):
        raise FormatError("non-zero bytes in the padding before data_offset")
    return OvitFile(version, data_offset, metadata, types, tensors, offsets, order, dtypes)


def _widen(data, start, dtype, dims):
    """The float32 values of a stored tensor (FORMAT.md, "Tensor data types")."""
    count = int(np.prod(dims))
    if dtype == 0:
        return np.frombuffer(data, dtype="<f4", count=count, offset=start).reshape(dims)
    if dtype == 1:
        bits = np.frombuffer(data, dtype="<u2", count=count, offset=start).astype(np.uint32) << 16
        return bits.view(np.float32).reshape(dims)
    q = np.frombuffer(data, dtype=np.int8, count=count, offset=start).reshape(dims)
    scale = np.frombuffer(data, dtype="<f4", count=dims[0], offset=start + -(-count // 64) * 64)
    return q.astype(np.float32) * scale[:, None]


def architecture(ovit):
    """The Architecture its arch.* keys describe (all required)."""
    fields = {}
    for key, kind, field in ARCH_KEYS:
        if key not in ovit.metadata:
            raise FormatError(f"missing metadata key {key}")
        if ovit.metadata_types[key] != kind:
            raise FormatError(f"metadata key {key} has type {ovit.metadata_types[key]}, not {kind}")
        value = ovit.metadata[key]
        fields[field] = bool(value) if field in _BOOL_FIELDS else value
    for key, kind, field, default in OPTIONAL_ARCH_KEYS:
        value = ovit.metadata.get(key, default)
        if key in ovit.metadata and ovit.metadata_types[key] != kind:
            raise FormatError(f"metadata key {key} has type {ovit.metadata_types[key]}, not {kind}")
        fields[field] = bool(value) if field in _BOOL_FIELDS else value
    for key, kind, field, qualified in QUALIFYING_ARCH_KEYS:
        if key in ovit.metadata and not fields[qualified]:
            raise FormatError(f"{key} needs arch.{qualified}")
        if key in ovit.metadata:
            if ovit.metadata_types[key] != kind:
                raise FormatError(f"metadata key {key} has type {ovit.metadata_types[key]}, not {kind}")
            fields[field] = ovit.metadata[key]
    if (fields["head"] == "mlp") != ("arch.head_hidden" in ovit.metadata):
        raise FormatError("arch.head_hidden must be present exactly when arch.head is mlp")
    if ovit.metadata.get("arch.patch_norm", 0) > 1:
        raise FormatError(f"arch.patch_norm is {ovit.metadata.get('arch.patch_norm')}, not 0 or 1")
    for key, kind, _ in PREPROCESS_KEYS:
        if ovit.metadata_types.get(key) != kind:
            raise FormatError(f"metadata key {key} missing or of the wrong type")
    features = ovit.metadata.get("arch.features")
    if (ovit.version == 2) != (features is not None):
        raise FormatError(f"version {ovit.version} file {'without' if features is None else 'with'} arch.features")
    if features is not None:
        fields["features"] = tuple(features)
        if "rope" in features:
            fields["rope_layout"] = ovit.metadata["arch.rope_layout"]
            fields["rope_per_block"] = bool(ovit.metadata["arch.rope_per_block"])
        if "attn_pool_shape" in features:
            fields["pool_heads"] = ovit.metadata["arch.pool_heads"]
            fields["pool_mlp_dim"] = ovit.metadata["arch.pool_mlp_dim"]
            fields["pool_prefix"] = bool(ovit.metadata["arch.pool_prefix"])
    return Architecture(**fields)


def check_tensor_set(ovit):
    """The file's tensors are exactly FORMAT.md's table for its architecture, with its shapes."""
    expected = canonical_tensors(architecture(ovit))
    names = [name for name, _ in expected]
    if sorted(names) != sorted(ovit.order):
        raise FormatError(f"tensor set differs: missing {sorted(set(names) - set(ovit.order))}, "
                          f"extra {sorted(set(ovit.order) - set(names))}")
    for name, shape in expected:
        if ovit.tensors[name].shape != shape:
            raise FormatError(f"tensor {name} has shape {ovit.tensors[name].shape}, expected {shape}")
