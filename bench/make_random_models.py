#!/usr/bin/python3
"""Writes random-weight ViT model files (.ovit) for the benchmarks.

    /usr/bin/python3 bench/make_random_models.py [--out DIR] [--models tiny,small,base] [--dtype D] [--force]

One file per size, `DIR/vit_{size}_patch16_224.ovit` (default DIR: bench/models,
git-ignored): ViT-Ti/16, S/16, B/16 by default, L/16 (1.2 GB) only when asked for
with `--models large`. Each is a timm-named state dict of fixed-seed random normal
weights with realistic scales (tests/reference/random_vit.py, as in the tests, so that
attention and GELU work on non-trivial values), written as a temporary safetensors
file and converted by `weights/convert.py --arch vit_{size}_patch16_224`; with
`--dtype bf16|int8` the linear weights are stored so (weights/FORMAT.md), in
`vit_{size}_patch16_224_{dtype}.ovit`, from the same random weights.
Existing files are kept unless `--force`. Speed does not depend on the weights'
values, so these files time exactly like the pretrained models of the same size.
`--tiled`: every tensor repeats its first 16 KB (4096 values) instead, so that
the files compress ~1000x (bench/bundle.sh carries them to machines that have
no Python).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "weights"))
sys.path.insert(0, os.path.join(REPO, "tests", "reference"))
from onevit_convert.dtypes import DTYPES  # noqa: E402
from harness import ToolError, run_tool  # noqa: E402  (before torch: it sets OMP_WAIT_POLICY)
from random_vit import random_vit_state  # noqa: E402
import safetensors_io  # noqa: E402

SIZES = ("tiny", "small", "base", "large")
# (embed dim, depth) of timm's vit_{size}_patch16_224, MLP ratio 4
SIZE_DIMS = {"tiny": (192, 12), "small": (384, 12), "base": (768, 12), "large": (1024, 24)}
DEFAULT_SIZES = ("tiny", "small", "base")
DEFAULT_OUT = os.path.join(HERE, "models")
CONVERT = os.path.join(REPO, "weights", "convert.py")
NUM_CLASSES = 1000
SEED = 20240701


def arch_name(size: str) -> str:
    return f"vit_{size}_patch16_224"


def model_path(size: str, out_dir: str = DEFAULT_OUT, dtype: str = "f32") -> str:
    return os.path.join(out_dir, arch_name(size) + ("" if dtype == "f32" else "_" + dtype) + ".ovit")


TILE = 4096  # values: 16 KB of float32


def tiled(tensor):
    """`tensor` with its first TILE values repeated over all of it."""
    flat = tensor.reshape(-1)
    if flat.numel() <= TILE:
        return tensor
    reps = -(-flat.numel() // TILE)
    return flat[:TILE].repeat(reps)[:flat.numel()].reshape(tensor.shape).clone()


def write_model(size: str, path: str, dtype: str = "f32", tile: bool = False) -> None:
    """Random weights for `size` → `path`, replaced atomically."""
    dim, depth = SIZE_DIMS[size]
    state = random_vit_state(dim, depth, mlp_dim=4 * dim, num_classes=NUM_CLASSES, seed=SEED)
    if tile:
        state = {name: tiled(t) for name, t in state.items()}
    out_dir = os.path.dirname(os.path.abspath(path))
    # The checkpoint goes beside the output, not in /tmp: ViT-L's is 1.2 GB and /tmp
    # may be memory. The .part name keeps a half-written file out of the bench's *.ovit.
    with tempfile.TemporaryDirectory(prefix=".make_random_", dir=out_dir) as tmp:
        ckpt = os.path.join(tmp, "model.safetensors")
        safetensors_io.save_file(state, ckpt, metadata={"format": "pt"})
        del state
        run_tool([sys.executable, CONVERT, ckpt, "--arch", arch_name(size), "--dtype", dtype,
                  "-o", path + ".part"], "convert.py")
    os.replace(path + ".part", path)


def ensure_model(size: str, out_dir: str = DEFAULT_OUT, force: bool = False, dtype: str = "f32",
                 tile: bool = False) -> str:
    """The path of `size`'s model file in `out_dir`, written first if missing (or `force`)."""
    path = model_path(size, out_dir, dtype)
    if force or not os.path.isfile(path):
        os.makedirs(out_dir, exist_ok=True)
        print(f"writing {path}", file=sys.stderr, flush=True)
        write_model(size, path, dtype, tile)
    return path


def parse_sizes(text: str) -> list[str]:
    sizes = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown or not sizes:
        raise ValueError(f"unknown model size(s) {unknown or text!r}; choose from {', '.join(SIZES)}")
    return sizes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: bench/models)")
    ap.add_argument("--models", default=",".join(DEFAULT_SIZES),
                    help=f"comma list of {', '.join(SIZES)} (default: {','.join(DEFAULT_SIZES)})")
    ap.add_argument("--dtype", choices=DTYPES, default="f32",
                    help="how linear weights are stored (weights/FORMAT.md; default f32)")
    ap.add_argument("--force", action="store_true", help="rewrite files that already exist")
    ap.add_argument("--tiled", action="store_true", help="repeat 16 KB of random values per tensor (compressible)")
    args = ap.parse_args(argv)
    try:
        sizes = parse_sizes(args.models)
    except ValueError as e:
        ap.error(str(e))
    for size in sizes:
        path = model_path(size, args.out, args.dtype)
        if os.path.isfile(path) and not args.force:
            print(f"{path}: exists, kept (--force rewrites it)")
            continue
        try:
            ensure_model(size, args.out, force=True, dtype=args.dtype, tile=args.tiled)
        except ToolError as e:
            print(f"make_random_models.py: {e}", file=sys.stderr)
            return 1
        print(f"{path}: {os.path.getsize(path):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
