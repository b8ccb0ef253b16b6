"""Which checkpoint family a set of tensor names belongs to."""

from . import google, hf, timm
from .errors import ConvertError
from .tensors import name_list

FAMILIES = (timm, hf, google)


def map_checkpoint(tensors):
    """Detects the family from the tensor names and maps to canonical tensors."""
    keys = set(tensors)
    found = [f for f in FAMILIES if f.matches(keys)]
    if len(found) == 1:
        return found[0].to_canonical(tensors)
    if len(found) > 1:
        raise ConvertError("checkpoint mixes the tensor names of " +
                           " and ".join(f.FAMILY for f in found) + " checkpoints")
    if hf.is_bare_vit_model(keys):
        raise ConvertError(
            "this is a Hugging Face ViTModel (no 'vit.' prefix, no classifier): it has no "
            "classification head, so there is nothing to classify with; convert a "
            "ViTForImageClassification checkpoint (classifier.weight) instead")
    expected = "; ".join(f.DESCRIPTION for f in FAMILIES)
    raise ConvertError(f"unrecognised checkpoint layout (its tensors: {name_list(sorted(keys))}); "
                       f"expected one of: {expected}")
