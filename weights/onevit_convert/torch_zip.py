"""torch.save's zip archives (PyTorch >= 1.6) read without importing torch.

Importing torch takes seconds, longer than converting a ViT-B; a state dict needs none of it. The
archive holds `<name>/data.pkl`, a pickle of the dict whose tensors refer to storages stored
uncompressed as `<name>/data/<key>`, and `<name>/byteorder`. The pickle is read with an allow-list,
as torch's weights-only unpickler reads it: plain containers, `collections.OrderedDict`,
`torch._utils._rebuild_tensor_v2` / `_rebuild_parameter` and the typed storage classes — any other
global is refused before it could be called, so no file can run code. What this reader does not
know (another global, a big-endian archive) returns None, and the caller asks torch itself.
"""

import collections
import mmap
import pickle
import struct
import zipfile

import numpy as np

# torch's typed storage classes (torch.save writes these names) → numpy dtypes ("bf16": no numpy dtype).
_STORAGES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": "bf16",
             "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
             "ByteStorage": "u1", "BoolStorage": "?"}


class Unsupported(Exception):
    """Something this reader leaves to torch."""


class _StorageType:
    def __init__(self, name):
        self.dtype = _STORAGES[name]


class _Tensor:
    """A tensor as the pickle rebuilds it: a read-only view of its storage in the mapped file."""

    def __init__(self, view, bf16):
        self.view, self.bf16 = view, bf16

    def array(self):
        """A copy out of the map; bf16 and f16 widened to f32 (exact; numpy has no bf16)."""
        if self.bf16:
            return (self.view.astype(np.uint32, order="C") << 16).view(np.float32)
        return self.view.astype(np.float32 if self.view.dtype == np.float16 else self.view.dtype, order="C")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    array, bf16 = storage
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if 0 in size:
        return _Tensor(np.zeros(size, array.dtype), bf16)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
    if storage_offset < 0 or any(s < 0 for s in stride) or last >= array.size:
        raise Unsupported("a tensor outside its storage")
    view = np.lib.stride_tricks.as_strided(array[storage_offset:], shape=size,
                                           strides=tuple(s * array.itemsize for s in stride), writeable=False)
    return _Tensor(view, bf16)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


# OrderedDict itself: a state dict carries its _metadata as an attribute (the pickle's BUILD).
_GLOBALS = {("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storage):
        super().__init__(file)
        self._storage = storage

    def find_class(self, module, name):
        if (module, name) in _GLOBALS:
            return _GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGES:
            return _StorageType(name)
        raise Unsupported(f"{module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and
                isinstance(pid[1], _StorageType)):
            raise Unsupported("a storage record of another form")
        return self._storage(pid[1].dtype, str(pid[2]), int(pid[4]))


def _member(mapped, z, name):
    """A stored (uncompressed) zip member's bytes: a view of the mapped file."""
    info = z.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        raise Unsupported("a compressed member")
    start = info.header_offset
    header = mapped[start:start + 30]
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise Unsupported("a damaged member header")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    begin = start + 30 + name_len + extra_len
    if begin + info.file_size > len(mapped):
        raise Unsupported("a member past the file's end")
    return np.frombuffer(mapped, np.uint8, info.file_size, begin)


def load(path):
    """The unpickled object, its tensors numpy arrays copied out of the file (those of nested dicts
    too), or None if torch must read it (a damaged archive too: torch names what is wrong)."""
    try:
        return _load(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError):
        return None


def _load(path):
    with open(path, "rb") as f, zipfile.ZipFile(f) as z:
        pickles = [n for n in z.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            return None
        prefix = pickles[0][:-len("data.pkl")]
        if prefix + "byteorder" in z.namelist() and z.read(prefix + "byteorder") != b"little":
            return None
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            def storage(dtype, key, numel):
                raw = _member(mapped, z, prefix + "data/" + key)
                wide = np.dtype("<u2" if dtype == "bf16" else dtype)
                if raw.size < numel * wide.itemsize:
                    raise Unsupported("a storage shorter than its elements")
                return raw[:numel * wide.itemsize].view(wide), dtype == "bf16"

            try:
                with z.open(prefix + "data.pkl") as pkl:
                    return _copied(_Unpickler(pkl, storage).load())
            except (Unsupported, pickle.UnpicklingError, ValueError, TypeError, KeyError, EOFError,
                    AttributeError, IndexError, RecursionError):
                return None
        finally:
            try:
                mapped.close()
            except BufferError:  # a refused pickle's half-built views: the map goes with them
                pass


def _copied(obj):
    if isinstance(obj, _Tensor):
        return obj.array()
    if isinstance(obj, dict):
        return {k: _copied(v) for k, v in obj.items()}
    return obj
