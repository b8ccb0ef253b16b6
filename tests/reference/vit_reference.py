"""An independent PyTorch reference for the Vision Transformer.

Written from the papers (Dosovitskiy et al. 2020, "An Image is Worth 16x16
Words"; Touvron et al. 2020, "Training data-efficient image transformers")
and timm's parameter naming, deliberately *not* from onevit's converter or
engine. Everything is plain and explicit: a strided convolution for the patch
embedding, LayerNorm written out as (x - mean) / sqrt(var + eps), a q/k/v
split of the fused projection, softmax(scale * q k^T) v by matmul, and the
exact erf GELU (or the tanh approximation) from torch.nn.functional.gelu.

The parameter names are timm's, so a timm state dict loads with
`load_state_dict(..., strict=True)`:

    patch_embed.proj.{weight,bias}   [D, C, P, P], [D]
    cls_token                        [1, 1, D]
    dist_token                       [1, 1, D]          (DeiT distilled only)
    pos_embed                        [1, T + G, D]
    blocks.N.norm1.{weight,bias}     [D]
    blocks.N.attn.qkv.{weight,bias}  [3*I, D], [3*I]     rows: q, k, v; head-major
    blocks.N.attn.proj.{weight,bias} [D, I], [D]
    blocks.N.norm2.{weight,bias}     [D]
    blocks.N.mlp.fc1.{weight,bias}   [M, D], [M]
    blocks.N.mlp.fc2.{weight,bias}   [D, M], [D]
    norm.{weight,bias}               [D]
    head.{weight,bias}               [K, D], [K]
    head_dist.{weight,bias}          [K, D], [K]        (DeiT distilled only)

Run it in float64 (`model.double()`, double input) when it serves as the
ground truth for a float32 engine.

The module also has a reader for onevit's `.ovit` model file, written from
weights/FORMAT.md, that maps the file's canonical tensors back to timm names,
so a shipped model can be checked against this reference.

Command line (handy when debugging parity):
    python3 vit_reference.py --ovit MODEL.ovit --input in.npy --output out.npy
    python3 vit_reference.py --safetensors CKPT --heads 3 --input in.npy --output out.npy
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import struct
import sys
import zlib
from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclasses.dataclass
class ViTConfig:
    image_size: Tuple[int, int] = (224, 224)   # (height, width)
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    head_dim: Optional[int] = None            # default embed_dim // num_heads
    mlp_dim: int = 3072
    num_classes: int = 1000
    eps: float = 1e-6
    gelu: str = "erf"                         # "erf" (exact) or "tanh"
    qkv_bias: bool = True
    distilled: bool = False                   # DeiT: dist_token + head_dist
    final_norm: bool = True
    attn_scale: Optional[float] = None        # default head_dim ** -0.5

    @property
    def inner_dim(self) -> int:
        return self.num_heads * self.resolved_head_dim

    @property
    def resolved_head_dim(self) -> int:
        if self.head_dim is not None:
            return self.head_dim
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} not divisible by {self.num_heads} heads")
        return self.embed_dim // self.num_heads

    @property
    def grid(self) -> Tuple[int, int]:
        h, w = self.image_size
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"image {h}x{w} is not a multiple of patch {self.patch_size}")
        return h // self.patch_size, w // self.patch_size

    @property
    def prefix_tokens(self) -> int:
        return 2 if self.distilled else 1


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    mean = x.mean(dim=-1, keepdim=True)
    centred = x - mean
    var = (centred * centred).mean(dim=-1, keepdim=True)   # biased variance, as LayerNorm
    return centred / torch.sqrt(var + eps) * weight + bias


def linear(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    y = torch.matmul(x, layer.weight.t())
    if layer.bias is not None:
        y = y + layer.bias
    return y


class _Norm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))


class _PatchEmbed(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.proj = nn.Conv2d(cfg.in_chans, cfg.embed_dim, cfg.patch_size, stride=cfg.patch_size)


class _Attention(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.qkv = nn.Linear(cfg.embed_dim, 3 * cfg.inner_dim, bias=cfg.qkv_bias)
        self.proj = nn.Linear(cfg.inner_dim, cfg.embed_dim)


class _Mlp(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.embed_dim, cfg.mlp_dim)
        self.fc2 = nn.Linear(cfg.mlp_dim, cfg.embed_dim)


class _Block(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.norm1 = _Norm(cfg.embed_dim)
        self.attn = _Attention(cfg)
        self.norm2 = _Norm(cfg.embed_dim)
        self.mlp = _Mlp(cfg)


class VisionTransformer(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.cfg = cfg
        gh, gw = cfg.grid
        d = cfg.embed_dim
        self.patch_embed = _PatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        if cfg.distilled:
            self.dist_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.prefix_tokens + gh * gw, d))
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.depth))
        if cfg.final_norm:
            self.norm = _Norm(d)
        self.head = nn.Linear(d, cfg.num_classes)
        if cfg.distilled:
            self.head_dist = nn.Linear(d, cfg.num_classes)

    # --- pieces of the forward pass -------------------------------------------------

    def _gelu(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.gelu == "erf":
            return F.gelu(x)                       # 0.5 x (1 + erf(x / sqrt 2))
        if self.cfg.gelu == "tanh":
            return F.gelu(x, approximate="tanh")
        raise ValueError(f"unknown gelu kind {self.cfg.gelu!r}")

    def _attention(self, x: torch.Tensor, attn: _Attention,
                   maps: Optional[list] = None) -> torch.Tensor:
        b, n, _ = x.shape
        h, dh = self.cfg.num_heads, self.cfg.resolved_head_dim
        inner = h * dh
        qkv = linear(x, attn.qkv)                                  # [B, N, 3I]
        q = qkv[..., 0 * inner:1 * inner].reshape(b, n, h, dh).permute(0, 2, 1, 3)
        k = qkv[..., 1 * inner:2 * inner].reshape(b, n, h, dh).permute(0, 2, 1, 3)
        v = qkv[..., 2 * inner:3 * inner].reshape(b, n, h, dh).permute(0, 2, 1, 3)
        scale = self.cfg.attn_scale if self.cfg.attn_scale is not None else dh ** -0.5
        scores = torch.matmul(q, k.transpose(-2, -1)) * scale      # [B, H, N, N]
        scores = scores - scores.amax(dim=-1, keepdim=True)
        weights = torch.exp(scores)
        weights = weights / weights.sum(dim=-1, keepdim=True)      # softmax over keys
        if maps is not None:
            maps.append(weights)
        out = torch.matmul(weights, v)                             # [B, H, N, Dh]
        out = out.permute(0, 2, 1, 3).reshape(b, n, inner)         # heads concatenated
        return linear(out, attn.proj)

    def tokens(self, images: torch.Tensor, maps: Optional[list] = None) -> torch.Tensor:
        """Final token sequence [B, T + G, D] (after the final norm).

        maps: a list to which each block appends its attention probabilities
        [B, heads, T + G (queries), T + G (keys)]."""
        cfg = self.cfg
        if images.dim() != 4 or images.shape[1] != cfg.in_chans or \
                tuple(images.shape[2:]) != tuple(cfg.image_size):
            raise ValueError(f"expected [B, {cfg.in_chans}, {cfg.image_size[0]}, "
                             f"{cfg.image_size[1]}] input, got {list(images.shape)}")
        b = images.shape[0]
        pe = self.patch_embed.proj
        x = F.conv2d(images, pe.weight, pe.bias, stride=cfg.patch_size)   # [B, D, gh, gw]
        x = x.flatten(2).transpose(1, 2)                                   # [B, G, D], row-major grid
        prefix = [self.cls_token.expand(b, -1, -1)]
        if cfg.distilled:
            prefix.append(self.dist_token.expand(b, -1, -1))
        x = torch.cat(prefix + [x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = x + self._attention(layer_norm(x, blk.norm1.weight, blk.norm1.bias, cfg.eps), blk.attn, maps)
            hidden = linear(layer_norm(x, blk.norm2.weight, blk.norm2.bias, cfg.eps), blk.mlp.fc1)
            x = x + linear(self._gelu(hidden), blk.mlp.fc2)
        if cfg.final_norm:
            x = layer_norm(x, self.norm.weight, self.norm.bias, cfg.eps)
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self._head(self.tokens(images))

    def forward_with_attention(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Logits [B, K] and every block's attention [B, depth, heads, T + G, T + G]."""
        maps: list = []
        x = self.tokens(images, maps)
        return self._head(x), torch.stack(maps, dim=1)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.distilled:
            return (linear(x[:, 0], self.head) + linear(x[:, 1], self.head_dist)) / 2
        return linear(x[:, 0], self.head)


# --- building from checkpoints ---------------------------------------------------------

def _as_torch(state: Mapping[str, object]) -> Dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        out[k] = v if isinstance(v, torch.Tensor) else torch.from_numpy(np.array(v, copy=True))
    return out


def config_from_timm_state(state: Mapping[str, object], num_heads: int, *,
                           image_size: Optional[Tuple[int, int]] = None, eps: float = 1e-6,
                           gelu: str = "erf", head_dim: Optional[int] = None,
                           attn_scale: Optional[float] = None) -> ViTConfig:
    """Reads every dimension the tensor shapes can tell; the rest are arguments."""
    sd = _as_torch(state)
    w = sd["patch_embed.proj.weight"]
    d, c, p, _ = w.shape
    depth = 0
    while f"blocks.{depth}.norm1.weight" in sd:
        depth += 1
    distilled = "dist_token" in sd
    prefix = 2 if distilled else 1
    if image_size is None:
        g = sd["pos_embed"].shape[-2] - prefix
        side = int(round(math.sqrt(g)))
        if side * side != g:
            raise ValueError(f"pos_embed has {g} patch positions: not square, pass image_size")
        image_size = (side * p, side * p)
    inner = sd["blocks.0.attn.qkv.weight"].shape[0] // 3
    if head_dim is None:
        if inner % num_heads:
            raise ValueError(f"qkv width {inner} not divisible by {num_heads} heads")
        head_dim = inner // num_heads
    return ViTConfig(image_size=tuple(image_size), patch_size=int(p), in_chans=int(c),
                     embed_dim=int(d), depth=depth, num_heads=num_heads, head_dim=head_dim,
                     mlp_dim=int(sd["blocks.0.mlp.fc1.weight"].shape[0]),
                     num_classes=int(sd["head.weight"].shape[0]), eps=eps, gelu=gelu,
                     qkv_bias="blocks.0.attn.qkv.bias" in sd, distilled=distilled,
                     final_norm="norm.weight" in sd, attn_scale=attn_scale)


def from_timm_state_dict(state: Mapping[str, object], cfg: Optional[ViTConfig] = None, *,
                         num_heads: Optional[int] = None, dtype=torch.float64,
                         **cfg_kwargs) -> VisionTransformer:
    """A reference model holding `state` (timm names), in `dtype` (float64 by default)."""
    sd = _as_torch(state)
    if cfg is None:
        if num_heads is None:
            raise ValueError("pass cfg or num_heads")
        cfg = config_from_timm_state(sd, num_heads, **cfg_kwargs)
    model = VisionTransformer(cfg)
    model.load_state_dict(sd, strict=True)
    model.eval()
    return model.to(dtype)


# --- onevit .ovit reader (weights/FORMAT.md, version 1) -------------------------------

OVIT_MAGIC = b"ONEVIT\x00\x01"


def read_ovit(path: str, verify_data: bool = True) -> Tuple[Dict[str, object], Dict[str, np.ndarray]]:
    """Parses an .ovit file: (metadata key -> value, tensor name -> float32 array).

    bf16 and int8 tensors come back widened to float32 as FORMAT.md defines their
    values (bf16: the upper half of a float32; int8: q[o][i] * scale[o]).

    Written from weights/FORMAT.md apart from the converter's own reader
    (weights/onevit_convert/ovit_reader.py), so that the tests check the files
    the converter writes against the format, not against itself.
    """
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 32 or blob[:8] != OVIT_MAGIC:
        raise ValueError(f"{path}: not an onevit model file (bad magic)")
    version, header_crc, data_offset, data_crc, reserved = struct.unpack_from("<IIQII", blob, 8)
    if version not in (1, 2):   # 2: a file naming features (arch.features)
        raise ValueError(f"{path}: unsupported version {version}")
    if data_offset % 64 or data_offset > len(blob) or data_offset < 32:
        raise ValueError(f"{path}: bad data_offset {data_offset}")
    if zlib.crc32(blob[16:data_offset]) & 0xFFFFFFFF != header_crc:
        raise ValueError(f"{path}: header CRC mismatch")
    if verify_data and zlib.crc32(blob[data_offset:]) & 0xFFFFFFFF != data_crc:
        raise ValueError(f"{path}: data CRC mismatch")
    if reserved != 0:
        raise ValueError(f"{path}: reserved field is {reserved}, expected 0")
    pos = 32

    def scalar(fmt):
        nonlocal pos
        (v,) = struct.unpack_from(fmt, blob, pos)
        pos += struct.calcsize(fmt)
        return v

    def u32():
        return scalar("<I")

    def u64():
        return scalar("<Q")

    def f32():
        return scalar("<f")

    def string():
        nonlocal pos
        n = u32()
        s = blob[pos:pos + n].decode("utf-8")
        pos += n
        return s

    meta: Dict[str, object] = {}
    for _ in range(u32()):
        key = string()
        kind = u32()
        if kind == 0:
            value = u32()
        elif kind == 1:
            value = f32()
        elif kind == 2:
            value = string()
        elif kind == 3:
            value = [f32() for _ in range(u32())]
        elif kind == 4:
            value = [string() for _ in range(u32())]
        else:
            raise ValueError(f"{path}: metadata {key!r} has unknown type {kind}")
        if key in meta:
            raise ValueError(f"{path}: duplicate metadata key {key!r}")
        meta[key] = value
    tensors: Dict[str, np.ndarray] = {}
    for _ in range(u32()):
        name = string()
        dtype = u32()
        dims = [u64() for _ in range(u32())]
        offset, nbytes = u64(), u64()
        n = int(np.prod(dims))
        sizes = {0: 4 * n, 1: 2 * n}
        if len(dims) == 2:
            sizes[2] = (n + 63) // 64 * 64 + 4 * dims[0]  # s8 values, padding, f32 row scales
        if dtype not in sizes:
            raise ValueError(f"{path}: tensor {name!r} has dtype {dtype} with {len(dims)} dims")
        if offset % 64 or nbytes != sizes[dtype]:
            raise ValueError(f"{path}: tensor {name!r} has a bad offset/size")
        begin = data_offset + offset
        if begin + nbytes > len(blob):
            raise ValueError(f"{path}: tensor {name!r} runs past the end of the file")
        if dtype == 0:
            values = np.frombuffer(blob, dtype="<f4", count=n, offset=begin).astype(np.float32)
        elif dtype == 1:
            upper = np.frombuffer(blob, dtype="<u2", count=n, offset=begin).astype(np.uint32)
            values = (upper << np.uint32(16)).view(np.float32)
        else:
            q = np.frombuffer(blob, dtype=np.int8, count=n, offset=begin).reshape(dims)
            scales = np.frombuffer(blob, dtype="<f4", count=dims[0], offset=begin + sizes[2] - 4 * dims[0])
            values = (q.astype(np.float32) * scales[:, None]).astype(np.float32)
        tensors[name] = values.reshape(dims)
    if pos > data_offset:
        raise ValueError(f"{path}: header runs into the tensor data")
    return meta, tensors


def timm_state_from_ovit(meta: Mapping[str, object], tensors: Mapping[str, np.ndarray]
                         ) -> Tuple[ViTConfig, Dict[str, torch.Tensor]]:
    """Maps an .ovit file's canonical tensors back to a timm state dict + config."""
    if meta.get("arch.pool", "token") != "token" or meta.get("arch.head_norm", 0) or \
            not meta.get("arch.attn_proj", 1):
        raise ValueError("the reference covers token pooling with attention projection, "
                         "no head_norm")
    t = int(meta["arch.prefix_tokens"])
    d = int(meta["arch.dim"])
    distilled = meta.get("arch.head", "linear") == "distilled"
    if t != (2 if distilled else 1):
        raise ValueError(f"prefix_tokens {t} does not match arch.head {meta.get('arch.head')}")
    cfg = ViTConfig(image_size=(int(meta["arch.image_height"]), int(meta["arch.image_width"])),
                    patch_size=int(meta["arch.patch_size"]), in_chans=int(meta["arch.channels"]),
                    embed_dim=d, depth=int(meta["arch.depth"]), num_heads=int(meta["arch.heads"]),
                    head_dim=int(meta["arch.head_dim"]), mlp_dim=int(meta["arch.mlp_dim"]),
                    num_classes=int(meta["arch.num_classes"]), eps=float(meta["arch.norm_eps"]),
                    gelu=str(meta["arch.gelu"]), qkv_bias=bool(meta["arch.qkv_bias"]),
                    distilled=distilled, final_norm=bool(meta["arch.final_norm"]),
                    attn_scale=float(meta["arch.attn_scale"]))
    sd: Dict[str, torch.Tensor] = {}
    for name, arr in tensors.items():
        ten = torch.from_numpy(np.array(arr, copy=True))
        if name == "patch_embed.weight":
            sd["patch_embed.proj.weight"] = ten
        elif name == "patch_embed.bias":
            sd["patch_embed.proj.bias"] = ten
        elif name == "prefix_tokens":
            sd["cls_token"] = ten[0].reshape(1, 1, d)
            if distilled:
                sd["dist_token"] = ten[1].reshape(1, 1, d)
        elif name == "pos_embed":
            sd["pos_embed"] = ten.reshape(1, -1, d)
        else:
            sd[name] = ten
    return cfg, sd


def from_ovit(path: str, dtype=torch.float64) -> Tuple[VisionTransformer, Dict[str, object]]:
    """The reference model for an .ovit file, plus the file's metadata."""
    meta, tensors = read_ovit(path)
    cfg, sd = timm_state_from_ovit(meta, tensors)
    return from_timm_state_dict(sd, cfg, dtype=dtype), meta


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--ovit", help="onevit model file")
    src.add_argument("--safetensors", help="timm-named safetensors checkpoint")
    ap.add_argument("--heads", type=int, help="attention heads (with --safetensors)")
    ap.add_argument("--eps", type=float, default=1e-6)
    ap.add_argument("--gelu", choices=["erf", "tanh"], default="erf")
    ap.add_argument("--input", required=True, help="float32 NCHW .npy")
    ap.add_argument("--output", required=True, help="logits .npy (float64)")
    args = ap.parse_args(argv)
    sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
    if args.ovit:
        model, _ = from_ovit(args.ovit)
    else:
        import safetensors_io
        if not args.heads:
            ap.error("--heads is required with --safetensors")
        model = from_timm_state_dict(safetensors_io.load_file(args.safetensors),
                                     num_heads=args.heads, eps=args.eps, gelu=args.gelu)
    x = torch.from_numpy(np.load(args.input)).to(torch.float64)
    with torch.no_grad():
        np.save(args.output, model(x).numpy())
    return 0


if __name__ == "__main__":
    sys.exit(main())
