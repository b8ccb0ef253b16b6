"""Which checkpoint family a set of tensor names belongs to, and the spec it is read with."""

from . import flax_patch_encoder_vit, google, mnist, openclip_vit, timm, torchvision_vit, transformers_vit, \
    vitpytorch
from .constructor_config import SIGNATURES, ConstructorConfig
from .errors import ConvertError
from .openclip_vit import OpenClipArch
from .tensors import name_list
from .timm_description import TimmDescription
from .torchvision_vit import TorchvisionArch
from .transformers_config import TransformersConfig

FAMILIES = (timm, transformers_vit, google, torchvision_vit, openclip_vit, vitpytorch.BEFORE_2023,
            vitpytorch.SINCE_2023, mnist, flax_patch_encoder_vit)
# What each family's own description is; a flags-only TimmDescription (--heads, --gelu) serves all.
_OWN_CONFIG = {torchvision_vit: TorchvisionArch, openclip_vit: OpenClipArch}


def _signature(family):
    required, defaults = SIGNATURES[family]
    return ", ".join(list(required) + [k if v is None else f"{k}={v!r}" for k, v in defaults.items()])


def _family_marks():
    """Each family by its name and first tensor: "timm: patch_embed.proj.weight; ..."."""
    marks = []
    for f in FAMILIES:
        name, tensors = f.DESCRIPTION.split(" (", 1)
        depth, end = 0, len(tensors)
        for i, c in enumerate(tensors):
            depth += (c == "{") - (c == "}")
            if depth == 0 and c in ",)":
                end = i
                break
        marks.append(f"{name}: {tensors[:end]}")
    return "; ".join(marks)


def map_checkpoint(tensors, config=None):
    """Detects the family from the tensor names and maps to canonical tensors.

    `config` is what --arch/--config gave: a ModelSpec, a TimmDescription (completed here by
    the tensors), a ConstructorConfig (a model constructor's arguments) or None. Returns
    (MappedCheckpoint, ModelSpec or None): a constructor config's spec can only be built once its
    family is known.
    """
    keys = set(tensors)
    found = [f for f in FAMILIES if f.matches(keys)]
    if len(found) > 1:
        raise ConvertError("checkpoint mixes the tensor names of " +
                           " and ".join(f.FAMILY for f in found) + " checkpoints")
    if not found:
        raise ConvertError(f"unrecognised checkpoint layout: its {len(keys)} tensors "
                           f"({name_list(tensors, 5)}) are none of the ViT layouts onevit reads "
                           f"({_family_marks()}; convert.py --help lists each one's tensors)")
    family = found[0]
    if getattr(family, "NEEDS_CONSTRUCTOR_CONFIG", False):
        if not isinstance(config, ConstructorConfig):
            given = "no --config" if config is None else f"{config.source}, which is not one"
            raise ConvertError(
                f"the checkpoint is a {family.FAMILY} model, whose heads, head width, pooling and "
                f"input size its weights cannot tell: pass --config FILE holding the keyword "
                f"arguments of its constructor ({_signature(family.FAMILY)}); got {given}")
        spec = family.spec_from_kwargs(config, tensors)
        return family.to_canonical(tensors, spec), spec
    if isinstance(config, ConstructorConfig):
        raise ConvertError(
            f"{config.path} holds the constructor arguments of a vit-pytorch, "
            f"vit-pytorch-2023, mnist-vit or Flax patch-encoder model, but the checkpoint's tensor names are "
            f"those of a {family.FAMILY} checkpoint ({family.DESCRIPTION}); give it --arch or a "
            f"timm / Hugging Face config.json")
    for f, own in _OWN_CONFIG.items():
        if isinstance(config, own) and family is not f:
            raise ConvertError(f"{config.source} describes a {f.FAMILY} model, but the checkpoint's tensor names "
                               f"are those of a {family.FAMILY} checkpoint")
    if family in _OWN_CONFIG:
        return _own_spec(family, tensors, config)
    if family is transformers_vit and config is None:
        raise ConvertError("the checkpoint is a Hugging Face transformers model, whose heads, LayerNorm eps and "
                           "activation its config.json says: give its hub folder (weights and config.json) or "
                           "--config config.json")
    if isinstance(config, TransformersConfig):
        mapped = family.to_canonical(tensors)
        return mapped, config.spec(mapped)
    if isinstance(config, TimmDescription):
        # Decided from the architecture timm registers, before any tensor is read; its blocks are
        # then read as timm's class builds them.
        config.check_runnable()
        if family is timm:
            mapped = timm.to_canonical(tensors, config.architecture())
            return mapped, config.spec(mapped)
    mapped = family.to_canonical(tensors)
    if isinstance(config, TimmDescription):
        return mapped, config.spec(mapped)
    return mapped, config


def _own_spec(family, tensors, config):
    """torchvision and OpenCLIP: their own descriptions; a flags-only one (--heads, --gelu) says only
    what it says."""
    if isinstance(config, TimmDescription):
        if config.name is not None or config.norm_eps is not None or config.global_pool is not None:
            raise ConvertError(f"{config.source} describes a timm model, but the checkpoint is a {family.FAMILY} "
                               f"one: " + ("give --arch with its torchvision name (vit_b_16, ...) or --heads"
                                           if family is torchvision_vit else
                                           "give --arch with its open_clip name (ViT-B-32, ...) or --heads/--gelu"))
        if family is torchvision_vit:
            if config.gelu is not None:
                raise ConvertError("--gelu: torchvision's ViTs use exact GELU")
            config = TorchvisionArch(source="--heads", heads=config.heads)
        else:
            config = OpenClipArch(source="the flags", heads=config.heads, gelu=config.gelu)
    elif config is not None and not isinstance(config, _OWN_CONFIG[family]):
        raise ConvertError(f"{config.source} does not describe a {family.FAMILY} model, which the checkpoint is")
    mapped = family.to_canonical(tensors)
    return mapped, family.spec(config, mapped)
