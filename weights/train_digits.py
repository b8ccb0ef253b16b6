#!/usr/bin/python3
"""Trains the bundled demo model: a small ViT on scikit-learn's 8x8 digits.

Data: sklearn.datasets.load_digits (1,797 images, values 0..16, ink high), turned
into white-on-black 8-bit grey (round(v * 255 / 16)) and upscaled to 32x32 with
PIL's bilinear resize. The network sees exactly what onevit's preprocessing of
such a 32x32 grey PNG gives: resize straight to 32x32 (identity), /255,
(x - 0.5) / 0.5.

Model: a standard pre-norm ViT, timm naming. 1 channel, image 32, patch 8
(16 patches), D=64, depth 4, 4 heads, MLP 128, class token, LayerNorm eps
1e-6, exact erf GELU, 10 classes. It is trained with PyTorch's own
nn.TransformerEncoderLayer (norm_first) and exported to timm names, so the
test reference (tests/reference/vit_reference.py) is a second, independent
implementation that must agree with it.

Training: stratified 80/20 train/test split (fixed seed), AdamW with warmup +
cosine decay, random shifts of up to 3 pixels, 2 threads, well under a minute.

Outputs (paths relative to this directory):
  digits_vit.ovit                          via weights/convert.py, with an HF style
                                           config.json + preprocessor_config.json
  samples/digit_<label>_<test index>.png   one held-out digit per class, 32x32 grey,
                                           each classified correctly (and confidently)
                                           by the reference run on the converted file

Usage: /usr/bin/python3 weights/train_digits.py [--epochs N] [--seed S]
Deterministic given the seed (on one machine / library build).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

# Under load (a parallel build, ctest -j), libgomp's spinning threads can make a
# 2-thread step ~50x slower; sleeping waits cost nothing here. Must precede torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "reference"))
import safetensors_io  # noqa: E402
from hf_config import vit_config  # noqa: E402
import vit_reference  # noqa: E402

IMAGE, PATCH, CHANNELS = 32, 8, 1
DIM, DEPTH, HEADS, MLP, CLASSES = 64, 4, 4, 128, 10
EPS = 1e-6
MEAN, STD = 0.5, 0.5


# --- data ------------------------------------------------------------------------------

def load_digit_images() -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [N, 32, 32] white-on-black images, int labels [N])."""
    from PIL import Image
    from sklearn.datasets import load_digits
    digits = load_digits()
    small = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    big = np.stack([np.asarray(Image.fromarray(im, mode="L").resize((IMAGE, IMAGE), Image.BILINEAR))
                    for im in small])
    return big, digits.target.astype(np.int64)


def normalise(u8: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W] -> float32 [N, 1, H, W], as onevit's preprocessing does it."""
    x = u8.astype(np.float32) / np.float32(255.0)
    return torch.from_numpy(((x - np.float32(MEAN)) / np.float32(STD))[:, None])


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Shifts each image by up to max_shift pixels; the uncovered border is black (-1)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=(0.0 - MEAN) / STD)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


# --- the training model (PyTorch's built-in transformer layers) ------------------------

class DigitsViT(nn.Module):
    def __init__(self, dropout: float = 0.1):
        super().__init__()
        self.patch_embed = nn.Conv2d(CHANNELS, DIM, PATCH, stride=PATCH)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, DIM))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + (IMAGE // PATCH) ** 2, DIM))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(DIM, HEADS, MLP, dropout=dropout, activation="gelu",
                                       layer_norm_eps=EPS, batch_first=True, norm_first=True)
            for _ in range(DEPTH))
        self.norm = nn.LayerNorm(DIM, eps=EPS)
        self.head = nn.Linear(DIM, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x)[:, 0])

    def timm_state_dict(self) -> dict:
        """The weights under timm's names (float32, contiguous)."""
        sd = {
            "patch_embed.proj.weight": self.patch_embed.weight,
            "patch_embed.proj.bias": self.patch_embed.bias,
            "cls_token": self.cls_token,
            "pos_embed": self.pos_embed,
            "norm.weight": self.norm.weight,
            "norm.bias": self.norm.bias,
            "head.weight": self.head.weight,
            "head.bias": self.head.bias,
        }
        for i, layer in enumerate(self.layers):
            p = f"blocks.{i}."
            sd[p + "norm1.weight"] = layer.norm1.weight
            sd[p + "norm1.bias"] = layer.norm1.bias
            # in_proj rows are [q; k; v], each head-major: exactly timm's qkv layout.
            sd[p + "attn.qkv.weight"] = layer.self_attn.in_proj_weight
            sd[p + "attn.qkv.bias"] = layer.self_attn.in_proj_bias
            sd[p + "attn.proj.weight"] = layer.self_attn.out_proj.weight
            sd[p + "attn.proj.bias"] = layer.self_attn.out_proj.bias
            sd[p + "norm2.weight"] = layer.norm2.weight
            sd[p + "norm2.bias"] = layer.norm2.bias
            sd[p + "mlp.fc1.weight"] = layer.linear1.weight
            sd[p + "mlp.fc1.bias"] = layer.linear1.bias
            sd[p + "mlp.fc2.weight"] = layer.linear2.weight
            sd[p + "mlp.fc2.bias"] = layer.linear2.bias
        return {k: v.detach().to(torch.float32).contiguous().clone() for k, v in sd.items()}


def predict(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[i:i + 256]) for i in range(0, len(x), 256)]).numpy()


def train(model: DigitsViT, x: torch.Tensor, y: torch.Tensor, *, epochs: int, seed: int,
          batch: int = 64, lr: float = 2e-3, weight_decay: float = 0.05, warmup: int = 5,
          max_shift: int = 3, label_smoothing: float = 0.0) -> None:
    gen = torch.Generator().manual_seed(seed + 1)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    steps_per_epoch = math.ceil(len(x) / batch)
    total = epochs * steps_per_epoch

    def lr_at(step: int) -> float:
        if step < warmup * steps_per_epoch:
            return lr * (step + 1) / (warmup * steps_per_epoch)
        t = (step - warmup * steps_per_epoch) / max(1, total - warmup * steps_per_epoch)
        return lr * 0.5 * (1 + math.cos(math.pi * t))

    step = 0
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        total_loss = 0.0
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            xb = random_shift(x[idx], max_shift, gen) if max_shift else x[idx]
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            loss = F.cross_entropy(model(xb), y[idx], label_smoothing=label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total_loss += float(loss) * len(idx)
            step += 1
        if (epoch + 1) % 10 == 0 or epoch == 0:
            print(f"  epoch {epoch + 1:3d}/{epochs}  loss {total_loss / len(x):.4f}", flush=True)


# --- export -----------------------------------------------------------------------------

def hf_config() -> dict:
    return vit_config(dim=DIM, depth=DEPTH, heads=HEADS, mlp_dim=MLP, image_size=IMAGE, patch_size=PATCH,
                      channels=CHANNELS, eps=EPS, labels=[str(i) for i in range(CLASSES)])


def preprocessor_config() -> dict:
    return {
        "do_resize": True,
        "size": {"height": IMAGE, "width": IMAGE},
        "resample": 2,                 # PIL.Image.BILINEAR
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [MEAN],
        "image_std": [STD],
    }


def check_metadata(meta: dict) -> list[str]:
    want = {"arch.channels": CHANNELS, "arch.image_height": IMAGE, "arch.image_width": IMAGE,
            "arch.patch_size": PATCH, "arch.dim": DIM, "arch.depth": DEPTH, "arch.heads": HEADS,
            "arch.mlp_dim": MLP, "arch.num_classes": CLASSES, "arch.prefix_tokens": 1,
            "arch.gelu": "erf", "arch.pool": "token", "arch.head": "linear",
            "preprocess.resize": "direct", "preprocess.interpolation": "bilinear",
            "labels": [str(i) for i in range(CLASSES)]}
    problems = [f"{k} = {meta.get(k)!r}, expected {v!r}" for k, v in want.items() if meta.get(k) != v]
    for k, v in (("arch.norm_eps", EPS), ("preprocess.mean", [MEAN]), ("preprocess.std", [STD])):
        got = meta.get(k)
        if got is None or not np.allclose(np.atleast_1d(got), np.atleast_1d(v), rtol=1e-6, atol=0):
            problems.append(f"{k} = {got!r}, expected {v!r}")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Train the bundled digits ViT and convert it")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--output", default=os.path.join(HERE, "digits_vit.ovit"))
    ap.add_argument("--samples", default=os.path.join(HERE, "samples"))
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    from sklearn.model_selection import train_test_split

    images, labels = load_digit_images()
    idx_train, idx_test = train_test_split(np.arange(len(labels)), test_size=0.2,
                                           random_state=args.seed, stratify=labels)
    x_train, y_train = normalise(images[idx_train]), torch.from_numpy(labels[idx_train])
    x_test, y_test = normalise(images[idx_test]), labels[idx_test]
    print(f"digits: {len(idx_train)} train / {len(idx_test)} held-out images, "
          f"{IMAGE}x{IMAGE} grey, {CLASSES} classes")

    model = DigitsViT()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: ViT patch {PATCH}, D={DIM}, depth {DEPTH}, {HEADS} heads, MLP {MLP}, "
          f"{n_params:,} parameters; training {args.epochs} epochs on {args.threads} threads")
    t0 = time.time()
    train(model, x_train, y_train, epochs=args.epochs, seed=args.seed)
    train_secs = time.time() - t0
    acc_train = float((predict(model, x_train).argmax(1) == y_train.numpy()).mean())
    acc_test = float((predict(model, x_test).argmax(1) == y_test).mean())
    print(f"trained in {train_secs:.1f}s: train accuracy {acc_train:.2%}, "
          f"held-out accuracy {acc_test:.2%} ({int(round(acc_test * len(y_test)))}/{len(y_test)})")

    state = model.timm_state_dict()
    tmp = tempfile.mkdtemp(prefix="onevit_digits_")
    try:
        ckpt = os.path.join(tmp, "model.safetensors")
        safetensors_io.save_file(state, ckpt, metadata={"format": "pt"})
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(hf_config(), f, indent=2)
        with open(os.path.join(tmp, "preprocessor_config.json"), "w") as f:
            json.dump(preprocessor_config(), f, indent=2)
        print(f"checkpoint: {ckpt} (+ config.json, preprocessor_config.json)")
        convert = os.path.join(HERE, "convert.py")
        cmd = [sys.executable, convert, ckpt, "--config", os.path.join(tmp, "config.json"),
               "-o", args.output]
        proc = subprocess.run(cmd)
        if proc.returncode != 0:
            keep = os.path.join(tempfile.gettempdir(), "onevit_digits_checkpoint")
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(tmp, keep)
            print(f"FAIL: {' '.join(cmd)} exited {proc.returncode}; checkpoint kept in {keep}")
            return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # The converted file, read back by the independent reference.
    meta, tensors = vit_reference.read_ovit(args.output)
    problems = check_metadata(meta)
    ref_model, _ = vit_reference.from_ovit(args.output, dtype=torch.float64)
    for name, value in vit_reference.timm_state_from_ovit(meta, tensors)[1].items():
        if not torch.equal(value, state[name]):
            problems.append(f"tensor {name} differs from the trained weights")
    with torch.no_grad():
        ref_logits = ref_model(x_test.to(torch.float64)).numpy()
    train_logits = predict(model, x_test)
    ref_pred = ref_logits.argmax(1)
    if not np.array_equal(ref_pred, train_logits.argmax(1)):
        problems.append("the reference on the converted file predicts differently from the "
                        "training model")
    gap = float(np.abs(ref_logits - train_logits).max())
    if gap > 1e-3 * max(1.0, float(np.abs(ref_logits).max())):
        problems.append(f"reference vs training-model logits differ by {gap:.3e}")
    if problems:
        print("FAIL: the converted digits model is not what was trained:")
        for p in problems:
            print("  " + p)
        return 1
    acc_ref = float((ref_pred == y_test).mean())
    print(f"reference (float64, from {os.path.basename(args.output)}): held-out accuracy "
          f"{acc_ref:.2%}; max |logit - training model| {gap:.2e}")

    # One confidently, correctly classified held-out digit per class.
    from PIL import Image
    os.makedirs(args.samples, exist_ok=True)
    for old in glob.glob(os.path.join(args.samples, "digit_*.png")):
        os.remove(old)
    probs = vit_reference.softmax(ref_logits)
    written = []
    for cls in range(CLASSES):
        cands = [i for i in range(len(y_test)) if y_test[i] == cls and ref_pred[i] == cls]
        if not cands:
            print(f"FAIL: no correctly classified held-out digit of class {cls}")
            return 1
        best = [i for i in cands if probs[i, cls] >= 0.9] or \
            sorted(cands, key=lambda i: -probs[i, cls])
        i = best[0]
        path = os.path.join(args.samples, f"digit_{cls}_{i}.png")
        Image.fromarray(images[idx_test[i]], mode="L").save(path, optimize=True)
        written.append((path, float(probs[i, cls])))

    size = os.path.getsize(args.output)
    print(f"model: {args.output} ({size:,} bytes)")
    for path, p in written:
        print(f"sample: {path} (reference p={p:.3f})")
    print(f"SUMMARY: held-out accuracy {acc_test:.2%}, training {train_secs:.1f}s, "
          f"model file {size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
