#!/usr/bin/python3
"""Converts a ViT checkpoint (timm, Hugging Face or Google .npz) into a .ovit model file.

    python3 weights/convert.py INPUT [--config FILE] [--arch NAME] [--labels FILE] -o OUTPUT

The file format is specified in weights/FORMAT.md. Errors are reported as one
line, `convert.py: error: ...`, with exit status 1.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from onevit_convert.arch_table import TABLE, spec_from_arch  # noqa: E402
from onevit_convert.assemble import assemble  # noqa: E402
from onevit_convert.checkpoint import load_checkpoint  # noqa: E402
from onevit_convert.config import read_config  # noqa: E402
from onevit_convert.errors import ConvertError  # noqa: E402
from onevit_convert.families import map_checkpoint  # noqa: E402
from onevit_convert.labels import read_labels  # noqa: E402
from onevit_convert.metadata import model_metadata  # noqa: E402
from onevit_convert.ovit_writer import write_ovit  # noqa: E402

PROG = "convert.py"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line and status 1, like every other error of this tool.
        raise ConvertError(message)


def _parse(argv):
    parser = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("input", metavar="INPUT",
                        help="checkpoint: .safetensors, .pt/.pth/.bin (state dict) or .npz")
    parser.add_argument("--config", metavar="FILE",
                        help="timm config.json or Hugging Face ViTConfig config.json "
                             "(a preprocessor_config.json beside it is read too)")
    parser.add_argument("--arch", metavar="NAME",
                        help="timm architecture name: " + ", ".join(sorted(TABLE)))
    parser.add_argument("--labels", metavar="FILE",
                        help="class names, one per line (synset_words.txt style accepted)")
    parser.add_argument("-o", "--output", metavar="OUTPUT", required=True, help="the .ovit file to write")
    return parser.parse_args(argv)


def convert(argv):
    args = _parse(argv)
    if args.arch and args.config:
        raise ConvertError("give --arch or --config, not both")
    # Cheap inputs first, so that a typo fails before a large checkpoint is read.
    spec = read_config(args.config) if args.config else spec_from_arch(args.arch) if args.arch else None
    labels = read_labels(args.labels) if args.labels else None
    mapped = map_checkpoint(load_checkpoint(args.input))
    model = assemble(mapped, spec, labels)
    for note in mapped.notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    try:
        size = write_ovit(args.output, model_metadata(model), model.tensors)
    except OSError as e:
        raise ConvertError(f"{args.output}: cannot write ({e.strerror})") from None
    a = model.arch
    print(f"{mapped.family} ViT: dim={a.dim} depth={a.depth} heads={a.heads} mlp={a.mlp_dim} "
          f"image={a.image_height}x{a.image_width}/{a.patch_size} classes={a.num_classes} "
          f"head={a.head}, {model.parameter_count:,} params, {size:,} bytes -> {args.output}")


def main(argv=None):
    try:
        convert(sys.argv[1:] if argv is None else argv)
    except ConvertError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
