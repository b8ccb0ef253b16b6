"""Reading a checkpoint file into {name: numpy array}, whatever its container.

Containers: safetensors (parsed here: the `safetensors` package is not
available), PyTorch pickles (.pt/.pth/.bin: torch.save's zip archives read by
torch_zip.py without torch, else through torch's weights-only unpickler; either
way an allow-list, so a file can never run code), and NumPy .npz (no pickles
either).
Arrays keep their stored dtype (bf16 becomes f32, which numpy lacks and which
is exact); deciding what dtypes are acceptable is the family mapper's job,
so that an unused integer buffer is reported as an unexpected key, by name.
"""

import json
import math
import os
import pickle
import zipfile

import numpy as np

from . import torch_zip
from .errors import ConvertError

# safetensors dtype strings (safetensors/src/tensor.rs) → numpy little-endian dtypes.
_SAFETENSORS_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",  # BF16 widened below
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}
_SAFETENSORS_MAX_HEADER = 100_000_000  # the reference implementation's limit

_TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
# A training checkpoint wraps the state dict; these are the usual wrapper keys.
_WRAPPER_KEYS = ("model", "state_dict")


def load_checkpoint(path):
    """Returns {name: np.ndarray} for the tensors stored in `path`."""
    if not os.path.isfile(path):
        raise ConvertError(f"{path}: no such file")
    kind = _container_kind(path)
    if kind == "safetensors":
        tensors = _load_safetensors(path)
    elif kind == "safetensors-index":
        tensors = _load_safetensors_shards(path)
    elif kind == "npz":
        tensors = _load_npz(path)
    else:
        tensors = _load_torch(path)
    if not tensors:
        raise ConvertError(f"{path}: the checkpoint holds no tensors")
    return tensors


# Leading bytes of files that are not checkpoints but are often named like one.
_NOT_CHECKPOINTS = [
    (b"version https://git-lfs", "a Git LFS pointer file, not the weights (fetch them: git lfs pull)"),
    (b"<!DOCTYPE", "an HTML page (a failed download?), not a checkpoint"),
    (b"<html", "an HTML page (a failed download?), not a checkpoint"),
    (b"\x93NUMPY", "a single .npy array, not a checkpoint of named tensors"),
    (b"GGUF", "a GGUF file (llama.cpp), which onevit does not read"),
    (b"\x89HDF", "an HDF5 file (Keras .h5), which onevit does not read"),
]


def _container_kind(path):
    """What the file holds, from its first bytes; the suffix only decides between formats that
    bytes alone cannot tell (a .safetensors or .npz named so is parsed as one)."""
    lower = path.lower()
    if lower.endswith(".safetensors.index.json"):
        return "safetensors-index"
    with open(path, "rb") as f:
        head = f.read(64)
    for magic, what in _NOT_CHECKPOINTS:
        if head.startswith(magic):
            raise ConvertError(f"{path}: {what}")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise ConvertError(f"{path}: a damaged zip archive ({e})") from None
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            raise ConvertError(f"{path}: a TorchScript archive (torch.jit.save), not a state dict: load it "
                               f"with torch.jit.load and torch.save(model.state_dict(), ...)")
        if any(n.endswith("data.pkl") for n in names):
            return "torch"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        raise ConvertError(f"{path}: a zip file that is neither a PyTorch checkpoint nor an .npz")
    if lower.endswith(".safetensors") or (len(head) >= 9 and head[8:9] == b"{"):
        return "safetensors"
    if lower.endswith(".npz"):
        return "npz"
    if head[:1] == b"\x80":  # pickle protocol marker: legacy torch.save format
        return "torch"
    if lower.endswith(_TORCH_SUFFIXES):
        raise ConvertError(f"{path}: not a PyTorch checkpoint: neither a torch.save zip archive nor a pickle"
                           + (" (empty file)" if not head else f" (it starts with {head[:16]!r})"))
    raise ConvertError(
        f"{path}: unknown checkpoint format; expected .safetensors, .pt/.pth/.bin, .npz or .onnx")


def _load_safetensors_shards(path):
    """A sharded safetensors checkpoint: the index's weight_map names each tensor's shard."""
    try:
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
        shards = sorted(set(index["weight_map"].values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ConvertError(f"{path}: not a safetensors index (needs a weight_map: {type(e).__name__})") from None
    folder = os.path.dirname(os.path.abspath(path))
    tensors = {}
    for shard in shards:
        if not isinstance(shard, str) or os.path.basename(shard) != shard:
            raise ConvertError(f"{path}: shard {shard!r} is not a file name beside the index")
        shard_path = os.path.join(folder, shard)
        if not os.path.isfile(shard_path):
            raise ConvertError(f"{path}: its shard {shard} is missing")
        for name, array in _load_safetensors(shard_path).items():
            if name in tensors:
                raise ConvertError(f"{shard_path}: tensor {name} is in another shard too")
            tensors[name] = array
    return tensors


def _load_safetensors(path):
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        raw_len = f.read(8)
        if len(raw_len) != 8:
            raise ConvertError(f"{path}: too short for a safetensors file")
        header_len = int.from_bytes(raw_len, "little")
        if header_len > _SAFETENSORS_MAX_HEADER or 8 + header_len > size:
            raise ConvertError(f"{path}: safetensors header length {header_len} is impossible "
                               f"for a {size}-byte file")
        try:
            header = json.loads(f.read(header_len).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise ConvertError(f"{path}: safetensors header is not valid JSON ({type(e).__name__})") from None
    if not isinstance(header, dict):
        raise ConvertError(f"{path}: safetensors header is not a JSON object")
    header.pop("__metadata__", None)
    base = 8 + header_len
    buffer_len = size - base
    data = np.memmap(path, dtype=np.uint8, mode="r") if buffer_len > 0 else None
    tensors = {}
    for name, info in header.items():
        tensors[name] = _safetensors_tensor(path, name, info, data, base, buffer_len)
    return tensors


def _safetensors_tensor(path, name, info, data, base, buffer_len):
    where = f"{path}: tensor {name}"
    try:
        dtype_name, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
    except (TypeError, KeyError, ValueError):
        raise ConvertError(f"{where}: header entry needs dtype, shape and data_offsets") from None
    if not isinstance(dtype_name, str) or dtype_name not in _SAFETENSORS_DTYPES:
        raise ConvertError(f"{where}: unsupported safetensors dtype {dtype_name!r}")
    # A list of plain non-negative ints; the size in Python ints, which cannot overflow.
    if not isinstance(shape, list) or len(shape) > 8 or \
            not all(type(d) is int and 0 <= d < 2 ** 40 for d in shape):
        raise ConvertError(f"{where}: bad shape {str(shape)[:80]}")
    dtype = np.dtype(_SAFETENSORS_DTYPES[dtype_name])
    nbytes = math.prod(shape) * dtype.itemsize
    if not (isinstance(begin, int) and isinstance(end, int)) or \
            begin < 0 or end - begin != nbytes or end > buffer_len:
        raise ConvertError(f"{where}: data_offsets [{begin}, {end}] do not hold "
                           f"{shape} {dtype_name} inside the {buffer_len}-byte buffer")
    if nbytes == 0:
        array = np.zeros(shape, dtype)
    else:
        # Copy out of the memory map: the file may change or be closed later.
        array = np.array(data[base + begin: base + end].view(dtype).reshape(shape))
    if dtype_name == "BF16":
        # bf16 is the top half of an f32: widening is exact.
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _load_npz(path):
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise ConvertError(f"{path}: an .npy array, not an .npz archive of named arrays")
            return {name: z[name] for name in z.files}
    except ConvertError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        # Object arrays need pickle, which allow_pickle=False refuses: that lands here too.
        raise ConvertError(f"{path}: cannot read the .npz ({e})") from None


def _load_torch(path):
    obj = torch_zip.load(path) if zipfile.is_zipfile(path) else None
    if obj is None:  # what torch_zip leaves to torch: legacy pickles, other globals
        obj = _torch_load(path)
    if isinstance(obj, dict):
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise ConvertError(f"{path}: expected a state dict (name → tensor), got {type(obj).__name__}")
    # A model saved from DistributedDataParallel prefixes every name with 'module.'.
    if obj and all(isinstance(k, str) and k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    for name, value in obj.items():
        if not isinstance(value, np.ndarray):
            raise ConvertError(f"{path}: state dict entry {name!r} is a {type(value).__name__}, "
                               f"not a tensor")
    return {str(name): value for name, value in obj.items()}


def _torch_load(path):
    """torch's weights-only unpickler; its tensors (those of nested dicts too) as numpy arrays."""
    import torch  # imported here: slow to import, and only needed for what torch_zip does not read

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        reason = str(e).split("WeightsUnpickler error:")[-1].strip()
        raise ConvertError(
            f"{path}: refused to unpickle: not a weights-only checkpoint ({reason}); objects "
            f"beyond tensors and plain containers could run arbitrary code when unpickled, so "
            f"they are never loaded (re-save the state dict alone, or as safetensors)"
        ) from None
    except Exception as e:  # a corrupt or foreign file: torch raises many different types
        raise ConvertError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") \
            from None

    def numpy(value):
        if isinstance(value, dict):
            return {k: numpy(v) for k, v in value.items()}
        if not isinstance(value, torch.Tensor):
            return value
        value = value.detach().cpu()
        if value.dtype in (torch.bfloat16, torch.float16):
            value = value.to(torch.float32)  # numpy has no bf16; widening is exact
        return value.contiguous().numpy().copy()
    return numpy(obj)
