"""An .onnx file read with its weights left where they lie: the file is mapped, each
initializer holding plain raw data becomes a numpy view of its bytes, and only the rest
(nodes, inputs, outputs, other initializers) is parsed by the onnx package. onnx.load copies
every weight three times (the protobuf parse, the raw_data bytes object, numpy_helper.to_array);
for a ViT-B that was a fifth of its conversion.

Only the protobuf wire format's framing is read here (protobuf.dev/programming-guides/encoding),
down to ModelProto.graph (field 7), GraphProto.initializer (5) and a TensorProto's dims (1),
data_type (2), segment (3), name (8), raw_data (9), external_data (13) and data_location (14).
An initializer that is anything but one plain raw_data tensor is left in the graph for onnx.
"""

import math
import mmap
import os

import numpy as np

from .errors import ConvertError

# TensorProto.DataType → numpy, little-endian as ONNX stores raw data (bfloat16 and the rest: onnx).
RAW_DTYPES = {1: "<f4", 2: "u1", 3: "i1", 4: "<u2", 5: "<i2", 6: "<i4", 7: "<i8", 9: "?", 10: "<f2", 11: "<f8",
              12: "<u4", 13: "<u8"}
_GRAPH, _INITIALIZER = 7, 5
_DIMS, _DATA_TYPE, _SEGMENT, _NAME, _RAW_DATA, _EXTERNAL, _LOCATION = 1, 2, 3, 8, 9, 13, 14


class _Malformed(Exception):
    pass


def _varint(buf, pos, end):
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Malformed
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf, pos, end):
    """(field number, wire type, the field's first byte, its value's first byte, its end, varint value)."""
    while pos < end:
        first = pos
        key, pos = _varint(buf, pos, end)
        number, wire, value = key >> 3, key & 7, None
        start = pos
        if wire == 0:
            value, pos = _varint(buf, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, start = _varint(buf, pos, end)
            pos = start + length
        elif wire == 5:
            pos += 4
        else:  # groups (3, 4) are in no ONNX message
            raise _Malformed
        if pos > end:
            raise _Malformed
        yield number, wire, first, start, pos, value


def _encode_varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _raw_tensor(buf, start, end):
    """(name, array viewing buf) of a TensorProto that is one plain raw_data tensor, else None."""
    dims, seen, dtype_code, name, raw = [], set(), None, None, None
    for number, wire, _, begin, stop, value in _fields(buf, start, end):
        if number == _DIMS and wire == 0:
            dims.append(value)
            continue
        if number == _DIMS and wire == 2:
            pos = begin
            while pos < stop:
                dim, pos = _varint(buf, pos, stop)
                dims.append(dim)
            continue
        if number in seen or number in (_SEGMENT, _EXTERNAL) or (number == _LOCATION and value):
            return None
        seen.add(number)
        if number == _DATA_TYPE:
            dtype_code = value
        elif number == _NAME and wire == 2:
            name = bytes(buf[begin:stop]).decode("utf-8", "replace")
        elif number == _RAW_DATA and wire == 2:
            raw = (begin, stop)
    dtype = RAW_DTYPES.get(dtype_code)
    if name is None or raw is None or dtype is None or any(d >= 2 ** 62 for d in dims):
        return None
    count = math.prod(dims)
    if count * np.dtype(dtype).itemsize != raw[1] - raw[0]:
        return None  # onnx names the inconsistency
    return name, np.frombuffer(buf, dtype, count, raw[0]).reshape(dims)


def _graph(buf, start, end, arrays):
    """The GraphProto's bytes without the initializers read in place (added to arrays)."""
    kept = []
    for number, wire, first, begin, stop, _ in _fields(buf, start, end):
        found = _raw_tensor(buf, begin, stop) if number == _INITIALIZER and wire == 2 else None
        if found is None or found[0] in arrays:
            kept.append(buf[first:stop])
        else:
            arrays[found[0]] = found[1]
    return b"".join(kept)


def read(path):
    """(ModelProto without the in-place initializers, with external data loaded; {name: array} of
    those initializers, read-only views of the file's mapped bytes)."""
    try:
        import onnx
        from onnx.external_data_helper import load_external_data_for_model
    except ImportError:
        raise ConvertError(f"{path}: reading ONNX needs the onnx package (Debian: python3-onnx)") from None
    try:
        with open(path, "rb") as f:
            # Mapped, not read: the weights are views of the page cache, and map in 64 KiB at a fault.
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if os.fstat(f.fileno()).st_size else b""
    except (OSError, ValueError) as e:
        raise ConvertError(f"{path}: cannot read ({e})") from None
    arrays, parts = {}, []
    try:
        for number, wire, first, begin, stop, _ in _fields(buf, 0, len(buf)):
            if number == _GRAPH and wire == 2:
                graph = _graph(buf, begin, stop, arrays)
                parts.append(_encode_varint(_GRAPH << 3 | 2) + _encode_varint(len(graph)) + graph)
            else:
                parts.append(buf[first:stop])
        model = onnx.ModelProto.FromString(b"".join(parts))
    except Exception as e:  # _Malformed, protobuf's DecodeError and friends: not an ONNX model
        raise ConvertError(f"{path}: not a readable ONNX model ({type(e).__name__}: {str(e)[:200]})") from None
    try:
        load_external_data_for_model(model, os.path.dirname(os.path.abspath(path)))
    except FileNotFoundError as e:
        raise ConvertError(f"{path}: its external data file is missing ({os.path.basename(str(e.filename))}); keep "
                           f"the .onnx file and its data files in one folder") from None
    except Exception as e:
        raise ConvertError(f"{path}: its external data cannot be read ({type(e).__name__}: {str(e)[:200]})") \
            from None
    return model, arrays
