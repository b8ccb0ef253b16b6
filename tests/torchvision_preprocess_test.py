#!/usr/bin/python3
"""torchvision's ViT weight sets: the converter's recipe for each (--weights) against the set's own
transforms(), bit for bit, on the photos in ../shared/data/images.

For every weight set of torchvision's ViTs (ViT_B_16_Weights.IMAGENET1K_V1, ..._SWAG_E2E_V1, ...),
a tiny VisionTransformer at the set's crop size and the architecture's patch is saved, converted
with `--arch NAME --heads 1 --weights SET`, and the file's preprocessing is applied by onevit
(tests/tools/preprocess_dump) to each photo and compared with
`torchvision.models.get_weight(SET).transforms()(PIL image)`: every float must be equal. The
file's labels must be the set's categories.

Usage: /usr/bin/python3 tests/torchvision_preprocess_test.py --onevit build/apps/onevit --preprocess-dump build/tests/preprocess_dump
Exit status: 0 pass, 1 a difference, 2 a tool failed.
"""

from __future__ import annotations

import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
from harness import argument_parser, exit_status, report, resolve_converter, run_tool, scratch_dir  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision.models import get_weight  # noqa: E402
from torchvision.models.vision_transformer import VisionTransformer  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(HERE), "weights"))
from onevit_convert.ovit_reader import read_ovit  # noqa: E402
from onevit_convert.torchvision_vit import ARCHITECTURES, WEIGHTS  # noqa: E402

PHOTOS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared", "data", "images")


def main(argv=None) -> int:
    ap = argument_parser(__doc__.split("\n\n")[0], keep=True)
    ap.add_argument("--preprocess-dump", required=True, help="tests/tools/preprocess_dump")
    args = ap.parse_args(argv)
    convert = resolve_converter(args.repo)
    photos = sorted(p for p in glob.glob(os.path.join(PHOTOS, "*")) if p.lower().endswith((".jpg", ".jpeg", ".png")))
    if not photos:
        print(f"FAIL: no photos in {PHOTOS}")
        return 2
    failures, rows = [], []
    with scratch_dir("onevit_tv_preprocess_", args.keep) as tmp:
        for name, sets in WEIGHTS.items():
            patch = ARCHITECTURES[name][0]
            for weights in sets:
                enum = f"ViT_{name[4:].upper()}_Weights.{weights}"
                transform = get_weight(enum).transforms()
                crop = transform.crop_size[0]
                model = VisionTransformer(image_size=crop, patch_size=patch, num_layers=1, num_heads=1, hidden_dim=8,
                                          mlp_dim=8, num_classes=1000)
                ckpt, ovit = os.path.join(tmp, "m.pth"), os.path.join(tmp, "m.ovit")
                torch.save(model.state_dict(), ckpt)
                run_tool([sys.executable, convert, ckpt, "--arch", name, "--heads", "1", "--weights", weights,
                          "-o", ovit], "convert.py")
                m = read_ovit(ovit).metadata
                if m.get("labels") != list(get_weight(enum).meta["categories"]):
                    failures.append(f"{enum}: the file's labels are not the weight set's categories")
                exact, worst = 0, 0.0
                for photo in photos:
                    ref = transform(Image.open(photo).convert("RGB")).numpy()
                    out = os.path.join(tmp, "x.npy")
                    run_tool([args.preprocess_dump, "preprocess", photo, out, "--resize", m["preprocess.resize"],
                              "--resize-size", str(m["preprocess.resize_size"]),
                              "--height", str(m["arch.image_height"]), "--width", str(m["arch.image_width"]),
                              "--interpolation", m["preprocess.interpolation"],
                              "--mean", ",".join(repr(v) for v in m["preprocess.mean"]),
                              "--std", ",".join(repr(v) for v in m["preprocess.std"])], "preprocess_dump")
                    ours = np.load(out)
                    if ours.shape != ref.shape:
                        failures.append(f"{enum} {os.path.basename(photo)}: shape {ours.shape}, torchvision {ref.shape}")
                        continue
                    exact += int(np.array_equal(ours, ref))
                    worst = max(worst, float(np.abs(ours - ref).max()))
                rows.append((enum, f"{m['preprocess.resize_size']}/{crop} {m['preprocess.interpolation']}", exact, worst))
                if exact != len(photos):
                    failures.append(f"{enum}: {len(photos) - exact} of {len(photos)} photos differ from torchvision's "
                                    f"transforms (max |Δ| {worst:.3g})")
    print(f"{'weight set':<44}{'recipe':<22}{'bit-exact':>10}{'max|Δ|':>10}")
    for enum, recipe, exact, worst in rows:
        print(f"{enum:<44}{recipe:<22}{exact:>6}/{len(photos):<3}{worst:>10.3g}")
    return report(failures, "torchvision weight sets' preprocessing differs",
                  f"{len(rows)} torchvision weight sets bit-exact on {len(photos)} photos")


if __name__ == "__main__":
    sys.exit(exit_status(main))
