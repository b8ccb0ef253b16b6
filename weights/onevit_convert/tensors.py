"""Checks every family mapper applies to the tensors it reads.

Kept in one place so that all families report problems the same way: by the
checkpoint's own tensor name, with the shape or value that is wrong.
"""

import re

import numpy as np

from .errors import ConvertError

_MAX_LISTED = 12  # names listed in one message before "... and N more"


def shape_str(shape):
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def name_list(names, most=_MAX_LISTED):
    names = list(names)
    shown = ", ".join(names[:most])
    if len(names) > most:
        shown += f", ... and {len(names) - most} more"
    return shown


def as_f32(name, array):
    """The array as float32, or an error naming the tensor. Not copied when it already is: a view
    (an ONNX weight transposed in place) keeps its layout, which the writer lays out.

    f16/bf16/f64 are converted (weights are stored at whatever precision they
    were trained or exported in); integer or boolean data in a weight slot means
    the file is not what it claims to be.
    """
    if array.dtype.kind != "f":
        raise ConvertError(f"tensor {name} has dtype {array.dtype}; weights must be floating point")
    with np.errstate(over="ignore", invalid="ignore"):  # f64 overflow → Inf, reported below
        out = np.asarray(array, dtype=np.float32)
    finite = np.isfinite(out)
    if not finite.all():
        bad = np.argwhere(~finite)
        first = tuple(int(i) for i in bad[0])
        raise ConvertError(f"tensor {name} contains {len(bad)} NaN/Inf value(s) "
                           f"(after conversion to float32), the first at index {first}")
    return out


def expect_ndim(name, array, ndim):
    if array.ndim != ndim:
        raise ConvertError(f"tensor {name} has shape {shape_str(array.shape)}; "
                           f"expected {ndim} dimensions")
    return array


def squeeze_leading(name, array, ndim):
    """Drops leading size-1 axes ([1, 1, D] → [1, D] for ndim 2), refusing anything else."""
    extra = array.ndim - ndim
    if extra < 0 or any(d != 1 for d in array.shape[:extra]):
        raise ConvertError(f"tensor {name} has shape {shape_str(array.shape)}; "
                           f"expected {ndim} dimensions after leading 1s")
    return array.reshape(array.shape[extra:])


def block_count(keys, pattern, family):
    """Number of transformer blocks: one more than the highest index in `pattern`.

    A gap in the indices then shows up as missing keys of the absent block.
    """
    indices = [int(m.group(1)) for k in keys for m in [re.match(pattern, k)] if m]
    if not indices:
        raise ConvertError(f"{family} checkpoint has no transformer blocks "
                           f"(no tensor name matches {pattern})")
    return max(indices) + 1


def expect_keys(keys, required, optional, family):
    """Every required key present and no key outside required ∪ optional, or an error naming them."""
    keys = set(keys)
    missing = [k for k in required if k not in keys]
    allowed = set(required) | set(optional)
    unexpected = sorted(k for k in keys if k not in allowed)
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensor(s): {name_list(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} tensor(s): {name_list(unexpected)}")
    if problems:
        raise ConvertError(f"{family} checkpoint: " + "; ".join(problems))


def reject_features(keys, unsupported, family):
    """`unsupported`: (regex, description) of layers .ovit cannot express; names the first key found."""
    for pattern, what in unsupported:
        for key in sorted(keys):
            if re.search(pattern, key):
                raise ConvertError(f"{family} checkpoint uses {what} (tensor {key}); "
                                   f"the .ovit format cannot express it")
