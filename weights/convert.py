#!/usr/bin/python3
"""Converts a ViT checkpoint (timm, Hugging Face, torchvision, OpenCLIP, ONNX, Google .npz, ...) into a .ovit model file.

    python3 weights/convert.py INPUT [--config FILE | --arch NAME] [--heads N] [--gelu KIND]
                               [--norm-eps E] [--global-pool POOL] [--labels FILE]
                               [--image-size H[xW] [--pos-resample MODE]] [--dtype f32|bf16|int8] -o OUTPUT

The file format is specified in weights/FORMAT.md. Errors are reported as one
line, `convert.py: error: ...`, with exit status 1.
"""

EPILOG = """checkpoint families (detected from the tensor names):
  timm, hf, google                  with --arch NAME or a timm / Hugging Face config.json
                                    (timm: or only --heads N and the other flags); Hugging Face
                                    transformers: ViT, DeiT, DINOv2, DINOv3, CLIP, SigLIP from
                                    their config.json (give the hub folder)
  torchvision                       --arch vit_b_16 ... (or the shapes of one) or --heads N;
                                    --weights NAME: the weight set's preprocessing
  openclip                          --arch ViT-B-32[-quickgelu] ..., an open_clip_config.json,
                                    or --heads N and --gelu erf|quick
  onnx                              a .onnx graph, matched to the ViT by structure; its
                                    preprocessing from a preprocessor_config.json beside it,
                                    --config or --arch, else ImageNet's defaults

timm models by description: width, depth, MLP width, patch size, input size, class /
register / distillation tokens, LayerScale, norm_pre, fc_norm and the attention-pooling
head are read from the tensors; the attention heads, activation, LayerNorm eps and
pooling from --heads/--gelu/--norm-eps/--global-pool, else the config's model_args and
global_pool, else timm's registration of the name (its class, registered arguments and
the class's defaults: onevit_convert/timm_registry.json); a name timm does not register
from its words (size word: tiny 3, small 6, medium 8, base 12, large/huge/giant 16 heads,
...; 'clip': eps 1e-5; 'quickgelu'; 'gap': average pooling), else timm's defaults (eps
1e-6, exact GELU, class-token pooling). A width from the tensors that is not the name's
(base: 768) is refused unless --heads is given. Refused by name, from the architecture:
parallel blocks, residual post-norm (rpn), q/k norm, RMSNorm, SwiGLU, RoPE/rel-pos,
hybrid CNN stems.
  vit-pytorch                       lucidrains vit-pytorch ViT before 2023 (state dict)
  vit-pytorch-2023                  vit-pytorch ViT after 2023 (dual patch norm, final norm)
  mnist-vit                         the MNIST ViT (patch_to_embedding, MLP head)
  flax-seed                         the Flax ViT, an .npz of its '/'-joined parameter tree

constructor config (--config): a JSON object of the model constructor's keyword
arguments, named as its code names them; defaults as the code has them:
  vit-pytorch       image_size, patch_size, num_classes, dim, depth, heads, mlp_dim,
                    pool='cls' ('cls' | 'mean'), channels=3, dim_head=64
  vit-pytorch-2023  the same with mlp_dim_ratio (mlp_dim = mlp_dim_ratio * dim) instead
                    of mlp_dim; only pool='cls'
  mnist-vit         image_size, patch_size, num_classes, dim, depth, heads, mlp_dim, channels=3
  flax-seed         patch_size, embed_dim, hidden_dim, n_heads, num_layers, mlp_dim,
                    num_classes, image_size (default: the square grid of the position
                    embedding), channels (default: the conv kernel's)
  image_size may be an integer or [height, width]; dropout rates are ignored. A config
  that contradicts the tensors is an error naming both values. Two more keys may sit
  beside the arguments:
  "labels":     ["class 0", ...]
  "preprocess": the eval recipe; these models have none of their own, so the default is
                a direct bilinear resize to the model size with mean = std = 0.5 per
                channel. Keys (all optional):
                  "resize": "direct" | "shorter_then_crop" (shorter side to resize_size,
                            then a centre crop to the model size)
                  "resize_size": N (shorter_then_crop only, >= the model size)
                  "interpolation": "bilinear" | "bicubic" | "nearest"
                  "mean": [one per channel], "std": [one per channel]

--image-size H[xW]: write the model for another input size (e.g. 384, or 224x320 for a
model trained at 224). The patch-grid rows of the position embedding are resampled
bicubically as timm's resample_abs_pos_embed does, the class/distillation token rows
kept. --pos-resample bicubic (default) is PyTorch's F.interpolate(mode='bicubic',
align_corners=False, antialias=False); bicubic-antialias is antialias=True, timm >= 0.9's
default (the two differ even when upsampling). The recipe is scaled to the new size: a
direct resize goes to the new size; a shorter-side resize keeps its crop fraction
(resize_size x new longer side / old longer side, floored).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# numpy asks for huge pages on large arrays; a one-shot conversion pays their zeroing and compaction
# in system time without reusing them (docs/conversion.md, "Huge pages"). Before numpy is imported.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
# The converter's matrix products are one-image checks (an ONNX graph and the model matched to it):
# one BLAS thread is enough, and OpenMP threads spin-waiting on a busy machine made them 10x slower.
# Set before numpy loads its BLAS.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from onevit_convert.assemble import assemble  # noqa: E402
from onevit_convert.checkpoint import load_checkpoint  # noqa: E402
from onevit_convert.config import read_config  # noqa: E402
from onevit_convert.dtypes import DTYPES  # noqa: E402
from onevit_convert.errors import ConvertError  # noqa: E402
from onevit_convert.families import FAMILIES, map_checkpoint  # noqa: E402
from onevit_convert.hub_folder import resolve as resolve_input  # noqa: E402
from onevit_convert.labels import read_labels  # noqa: E402
from onevit_convert import onnx_source, openclip_vit, torchvision_vit  # noqa: E402
from onevit_convert.openclip_vit import OpenClipArch  # noqa: E402
from onevit_convert.torchvision_vit import TorchvisionArch  # noqa: E402
from onevit_convert.metadata import model_metadata  # noqa: E402
from onevit_convert.ovit_writer import write_ovit  # noqa: E402
from onevit_convert.posembed import MODES, parse_image_size, resize_model  # noqa: E402
from onevit_convert.timm_description import GELU_FLAGS, GLOBAL_POOLS, TimmDescription, \
    apply_flags, describe_name  # noqa: E402

# Installed, the launcher onevit-convert names itself in messages (weights/onevit-convert.in).
PROG = os.environ.get("ONEVIT_CONVERT_PROG", "convert.py")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line and status 1, like every other error of this tool.
        raise ConvertError(message)


def _parse(argv):
    layouts = "\n".join("  " + f.DESCRIPTION for f in FAMILIES)
    parser = _Parser(prog=PROG, description=__doc__.split("\n\n")[0],
                     epilog=EPILOG + "\ncheckpoint layouts (tensor names):\n" + layouts,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", metavar="INPUT",
                        help="checkpoint: .safetensors, .pt/.pth/.bin (state dict), .npz or .onnx (a ViT "
                             "graph, matched by structure); or a folder downloaded from a hub "
                             "(model.safetensors + config.json [+ preprocessor_config.json]), whose "
                             "config is read too")
    parser.add_argument("--config", metavar="FILE",
                        help="timm config.json, Hugging Face config.json (a preprocessor_config.json "
                             "beside it is read too), open_clip_config.json, or a model constructor's "
                             "arguments (below)")
    parser.add_argument("--arch", metavar="NAME",
                        help="timm architecture name (vit_base_patch16_224, vit_small_patch14_reg4_dinov2, "
                             "...; described below), torchvision's (vit_b_16, vit_b_32, vit_l_16, vit_l_32, "
                             "vit_h_14) or open_clip's (ViT-B-32, ViT-B-32-quickgelu, ViT-L-14, ...)")
    parser.add_argument("--weights", metavar="NAME",
                        help="torchvision: the weight set whose preprocessing to use, as torchvision's "
                             "enum names it (IMAGENET1K_V1, IMAGENET1K_SWAG_E2E_V1, "
                             "IMAGENET1K_SWAG_LINEAR_V1); default: the set for the checkpoint's input size")
    parser.add_argument("--heads", metavar="N", type=int, help="attention heads (timm, torchvision, OpenCLIP)")
    parser.add_argument("--gelu", metavar="KIND", choices=GELU_FLAGS,
                        help="MLP activation (timm, OpenCLIP): " + ", ".join(GELU_FLAGS) + " (quick: QuickGELU)")
    parser.add_argument("--norm-eps", metavar="E", type=float, help="timm: LayerNorm epsilon")
    parser.add_argument("--global-pool", metavar="POOL", choices=GLOBAL_POOLS,
                        help="timm: pooling, " + ", ".join(GLOBAL_POOLS))
    parser.add_argument("--labels", metavar="FILE",
                        help="class names, one per line (synset_words.txt style accepted)")
    parser.add_argument("--image-size", metavar="H[xW]",
                        help="input size to write the model for, resampling the position "
                             "embedding (below)")
    parser.add_argument("--pos-resample", metavar="MODE", choices=MODES, default="bicubic",
                        help="position embedding resampling for --image-size: "
                             + " or ".join(MODES) + " (default bicubic)")
    parser.add_argument("--dtype", choices=DTYPES, default="f32",
                        help="how linear weights are stored: f32 (default), bf16, or int8 with one "
                             "scale per output channel (weights/FORMAT.md); other tensors stay f32")
    parser.add_argument("-o", "--output", metavar="OUTPUT", required=True, help="the .ovit file to write")
    return parser.parse_args(argv)


def _describe_arch(args):
    """--arch (and --weights): a torchvision, open_clip or timm name, told apart by its form."""
    name = args.arch
    if args.weights is not None or torchvision_vit.is_name(name):
        for flag in ("gelu", "norm_eps", "global_pool"):
            if getattr(args, flag) is not None:
                raise ConvertError(f"--{flag.replace('_', '-')}: torchvision's ViTs have exact GELU, LayerNorm eps "
                                   f"1e-6 and class-token pooling")
        return torchvision_vit.describe(name, args.weights, args.heads)
    if openclip_vit.is_name(name):
        return openclip_vit.describe(name, args.heads, args.gelu)
    return describe_name(name, f"--arch {name}")


def convert(argv):
    args = _parse(argv)
    if args.arch and args.config:
        raise ConvertError("give --arch or --config, not both")
    checkpoint, config_path, notes = resolve_input(args.input, args.config, find_config=args.arch is None)
    # Cheap inputs first, so that a typo fails before a large checkpoint is read.
    config = read_config(config_path) if config_path else _describe_arch(args) if args.arch or args.weights \
        else None
    flags = {"heads": args.heads, "gelu": args.gelu, "norm_eps": args.norm_eps, "global_pool": args.global_pool}
    if isinstance(config, OpenClipArch):
        config.heads, config.gelu = args.heads, args.gelu
        if args.norm_eps is not None or args.global_pool is not None:
            raise ConvertError("--norm-eps and --global-pool describe timm models, not OpenCLIP's")
    elif any(v is not None for v in flags.values()) and not isinstance(config, TorchvisionArch):
        if config is None:
            config = TimmDescription(source="the flags")
        if not isinstance(config, TimmDescription):
            raise ConvertError(f"--heads, --gelu, --norm-eps and --global-pool describe timm, torchvision and "
                               f"OpenCLIP models; {config.source} is none of them")
        apply_flags(config, **flags)
    labels = read_labels(args.labels) if args.labels else None
    size = parse_image_size(args.image_size) if args.image_size is not None else None
    check = None
    if onnx_source.is_onnx(checkpoint):
        mapped, spec, check = onnx_source.read(checkpoint, config, labels)
    else:
        mapped, spec = map_checkpoint(load_checkpoint(checkpoint), config)
    mapped.notes[:0] = notes
    model = assemble(mapped, spec, labels)
    if check is not None:
        check(model)  # the converted model against the graph's own values
    if size is not None:
        model, note = resize_model(model, size, args.pos_resample)
        if note:
            mapped.notes.append(note)
    for note in mapped.notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    try:
        size = write_ovit(args.output, model_metadata(model), model.tensors, args.dtype)
    except OSError as e:
        raise ConvertError(f"{args.output}: cannot write ({e.strerror})") from None
    a = model.arch
    print(f"{mapped.family} ViT: dim={a.dim} depth={a.depth} heads={a.heads} mlp={a.mlp_dim} "
          f"image={a.image_height}x{a.image_width}/{a.patch_size} classes={a.num_classes} "
          f"head={a.head}, {model.parameter_count:,} params, {args.dtype}, {size:,} bytes -> {args.output}")


def main(argv=None):
    try:
        convert(sys.argv[1:] if argv is None else argv)
    except ConvertError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
