"""The real photos in ../shared/data, and the reference pipeline they go through.

Used by accuracy_test, which runs the pretrained DeiT-tiny on them: where the
data lives, which files are photos, and facebookresearch/deit's eval transform —
PIL open -> RGB -> Resize(256, bicubic) -> CenterCrop(224) -> ToTensor ->
Normalize(ImageNet) — independent of onevit's own image pipeline.
"""

from __future__ import annotations

import os

import numpy as np
import torch

SKIP = 77  # the exit status of a test whose data is not there


def add_data_argument(ap) -> None:
    ap.add_argument("--data", help="shared data directory (default: $ONEVIT_DATA or <repo>/../shared/data)")


def data_dir(args, repo: str) -> str:
    """--data, else $ONEVIT_DATA, else <repo>/../shared/data."""
    return os.path.abspath(args.data or os.environ.get("ONEVIT_DATA")
                           or os.path.join(repo, os.pardir, "shared", "data"))


def find_photos(root: str) -> list[str]:
    """Every .jpg/.jpeg below root, sorted."""
    out = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.lower().endswith((".jpg", ".jpeg")):
                out.append(os.path.join(dirpath, f))
    return sorted(out)


def reference_batch(photos: list[str]) -> torch.Tensor:
    """The photos through the DeiT eval transform: N × 3 × 224 × 224, float32."""
    from PIL import Image
    import torchvision.transforms as T
    transform = T.Compose([
        T.Resize(256, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(224),
        T.ToTensor(),
        T.Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    ])
    batch = []
    for path in photos:
        with Image.open(path) as im:
            batch.append(transform(im.convert("RGB")))
    return torch.stack(batch)


def float64_logits(model, x: torch.Tensor, chunk: int = 10) -> np.ndarray:
    """model(x) in float64, chunk images at a time."""
    with torch.no_grad():
        return torch.cat([model(x[i:i + chunk].to(torch.float64)) for i in range(0, len(x), chunk)]).numpy()
