"""PyTorch re-implementations of the seed articles' ViTs (../shared/seeds/*.txt beside the checkout).

Written from the seed code, module for module, so that each model's own state dict
loads with `load_state_dict(..., strict=True)`; deliberately *not* from onevit's converter
or its canonical layout. einops is not installed, so each `rearrange` pattern the seeds use
is spelled out with reshape/permute next to the pattern it replaces. Dropout layers are
kept where the seed has them (they hold no parameters and are inactive in eval mode).

    seed 001  VitPytorchViT     lucidrains vit-pytorch ViT before 2023 (PreNorm blocks)
    seed 002  the same model; the article's Attention has `nn.Softmax(dim = 1)`, a
              transcription slip (it would normalise over the heads): vit-pytorch, and
              seed 001, use dim=-1, which is what this reference does
    seed 003  VitPytorch2023ViT vit-pytorch after 2023: dual patch norm, norms inside the
              blocks, transformer.norm; forward returns {'cls_token', 'feature_map',
              'classification_head_logits'} as the seed does
    seed 004  MnistViT          Residual(PreNorm(...)) blocks, attention scaled by dim ** -0.5,
              MLP head (its Transformer class is not in the article; it is vit-pytorch's of
              that time, whose parameter names the article's checkpoints carry)
    seed 000  FlaxSeedViT       the Flax ViT rewritten in PyTorch from the Flax code: Dense
              kernels [in, out], one LayerNorm (eps 1e-6) per block used twice, separate
              q/k/v/proj Dense layers, flax.linen.gelu (tanh approximation); parameters come
              as the flattened, '/'-joined Flax tree (an .npz)

`run(model, images)` gives (logits, class token, patch tokens) for any of them, the tokens
taken after the final norm, or after the last block when the model has none.
Build a model in float64 for use as ground truth (`.double()`, double input).
"""

from __future__ import annotations

import math
from typing import Dict, Mapping, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def pair(t):
    return t if isinstance(t, tuple) else (t, t)


def _pair_json(t):
    """image_size / patch_size from a JSON config: a list stands for a tuple."""
    return tuple(t) if isinstance(t, list) else t


class RearrangePatches(nn.Module):
    """Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)', p1=ph, p2=pw)."""

    def __init__(self, p1, p2):
        super().__init__()
        self.p1, self.p2 = p1, p2

    def forward(self, img):
        b, c, hh, ww = img.shape
        h, w = hh // self.p1, ww // self.p2
        x = img.reshape(b, c, h, self.p1, w, self.p2)           # b c h p1 w p2
        x = x.permute(0, 2, 4, 3, 5, 1)                          # b h w p1 p2 c
        return x.reshape(b, h * w, self.p1 * self.p2 * c)


def heads_split(t, h):
    """rearrange(t, 'b n (h d) -> b h n d', h=h)."""
    b, n, hd = t.shape
    return t.reshape(b, n, h, hd // h).permute(0, 2, 1, 3)


def heads_merge(t):
    """rearrange(t, 'b h n d -> b n (h d)')."""
    b, h, n, d = t.shape
    return t.permute(0, 2, 1, 3).reshape(b, n, h * d)


# ============================================================================ seeds 001 / 002

class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x, **kwargs):
        return self.fn(self.norm(x), **kwargs)


class FeedForward(nn.Module):
    def __init__(self, dim, hidden_dim, dropout=0.):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, dim),
            nn.Dropout(dropout)
        )

    def forward(self, x):
        return self.net(x)


class Attention(nn.Module):
    def __init__(self, dim, heads=8, dim_head=64, dropout=0.):
        super().__init__()
        inner_dim = dim_head * heads
        project_out = not (heads == 1 and dim_head == dim)
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.attend = nn.Softmax(dim=-1)
        self.to_qkv = nn.Linear(dim, inner_dim * 3, bias=False)
        self.to_out = nn.Sequential(
            nn.Linear(inner_dim, dim),
            nn.Dropout(dropout)
        ) if project_out else nn.Identity()

    def forward(self, x):
        qkv = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = map(lambda t: heads_split(t, self.heads), qkv)
        dots = torch.matmul(q, k.transpose(-1, -2)) * self.scale
        attn = self.attend(dots)
        out = torch.matmul(attn, v)
        out = heads_merge(out)
        return self.to_out(out)


class Transformer(nn.Module):
    def __init__(self, dim, depth, heads, dim_head, mlp_dim, dropout=0.):
        super().__init__()
        self.layers = nn.ModuleList([])
        for _ in range(depth):
            self.layers.append(nn.ModuleList([
                PreNorm(dim, Attention(dim, heads=heads, dim_head=dim_head, dropout=dropout)),
                PreNorm(dim, FeedForward(dim, mlp_dim, dropout=dropout))
            ]))

    def forward(self, x):
        for attn, ff in self.layers:
            x = attn(x) + x
            x = ff(x) + x
        return x


class VitPytorchViT(nn.Module):
    """vit-pytorch `ViT` before 2023 (seed 001)."""

    def __init__(self, *, image_size, patch_size, num_classes, dim, depth, heads, mlp_dim,
                 pool='cls', channels=3, dim_head=64, dropout=0., emb_dropout=0.):
        super().__init__()
        image_height, image_width = pair(image_size)
        patch_height, patch_width = pair(patch_size)
        assert image_height % patch_height == 0 and image_width % patch_width == 0
        num_patches = (image_height // patch_height) * (image_width // patch_width)
        patch_dim = channels * patch_height * patch_width
        assert pool in {'cls', 'mean'}
        self.to_patch_embedding = nn.Sequential(
            RearrangePatches(patch_height, patch_width),
            nn.Linear(patch_dim, dim),
        )
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.dropout = nn.Dropout(emb_dropout)
        self.transformer = Transformer(dim, depth, heads, dim_head, mlp_dim, dropout)
        self.pool = pool
        self.to_latent = nn.Identity()
        self.mlp_head = nn.Sequential(
            nn.LayerNorm(dim),
            nn.Linear(dim, num_classes)
        )

    def encode(self, img):
        """The token sequence after the transformer, [B, n + 1, dim]."""
        x = self.to_patch_embedding(img)
        b, n, _ = x.shape
        cls_tokens = self.cls_token.expand(b, -1, -1)   # repeat '() n d -> b n d'
        x = torch.cat((cls_tokens, x), dim=1)
        x = x + self.pos_embedding[:, :(n + 1)]
        x = self.dropout(x)
        return self.transformer(x)

    def forward(self, img):
        x = self.encode(img)
        x = x.mean(dim=1) if self.pool == 'mean' else x[:, 0]
        x = self.to_latent(x)
        return self.mlp_head(x)

    def run(self, img):
        x = self.encode(img)
        pooled = x.mean(dim=1) if self.pool == 'mean' else x[:, 0]
        return self.mlp_head(self.to_latent(pooled)), x[:, 0], x[:, 1:]


# ============================================================================ seed 003

class Attention2023(nn.Module):
    def __init__(self, dim, heads=8, dim_head=64, dropout=0.):
        super().__init__()
        inner_dim = dim_head * heads
        project_out = not (heads == 1 and dim_head == dim)
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.norm = nn.LayerNorm(dim)
        self.attend = nn.Softmax(dim=-1)
        self.dropout = nn.Dropout(dropout)
        self.to_qkv = nn.Linear(dim, inner_dim * 3, bias=False)
        self.to_out = nn.Sequential(
            nn.Linear(inner_dim, dim),
            nn.Dropout(dropout)
        ) if project_out else nn.Identity()

    def forward(self, x):
        x = self.norm(x)
        qkv = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = map(lambda t: heads_split(t, self.heads), qkv)
        dots = torch.matmul(q, k.transpose(-1, -2)) * self.scale
        attn = self.attend(dots)
        attn = self.dropout(attn)
        out = torch.matmul(attn, v)
        out = heads_merge(out)
        return self.to_out(out)


class FFN(nn.Module):
    def __init__(self, dim, hidden_dim, dropout=0.):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim),
            nn.Linear(dim, hidden_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, dim),
            nn.Dropout(dropout)
        )

    def forward(self, x):
        return self.net(x)


class Transformer2023(nn.Module):
    def __init__(self, dim, depth, heads, dim_head, mlp_dim_ratio, dropout):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.layers = nn.ModuleList([])
        mlp_dim = mlp_dim_ratio * dim
        for _ in range(depth):
            self.layers.append(nn.ModuleList([
                Attention2023(dim=dim, heads=heads, dim_head=dim_head, dropout=dropout),
                FFN(dim=dim, hidden_dim=mlp_dim, dropout=dropout)
            ]))

    def forward(self, x):
        for attn, ffn in self.layers:
            x = attn(x) + x
            x = ffn(x) + x
        return self.norm(x)


class VitPytorch2023ViT(nn.Module):
    """vit-pytorch `ViT` after 2023, as seed 003 writes it."""

    def __init__(self, *, image_size, patch_size, num_classes, dim, depth, heads, mlp_dim_ratio,
                 pool='cls', channels=3, dim_head=64, dropout=0.):
        super().__init__()
        image_height, image_width = pair(image_size)
        patch_height, patch_width = pair(patch_size)
        assert image_height % patch_height == 0 and image_width % patch_width == 0
        num_patches = (image_height // patch_height) * (image_width // patch_width)
        patch_dim = channels * patch_height * patch_width
        self.to_patch_embedding = nn.Sequential(
            RearrangePatches(patch_height, patch_width),
            nn.LayerNorm(patch_dim),
            nn.Linear(patch_dim, dim),
            nn.LayerNorm(dim)
        )
        assert pool in {'cls', 'mean'}
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))
        self.dropout = nn.Dropout(dropout)
        self.transformer = Transformer2023(dim, depth, heads, dim_head, mlp_dim_ratio, dropout)
        self.pool = pool
        self.to_latent = nn.Identity()
        self.mlp_head = nn.Linear(dim, num_classes)

    def forward(self, img):
        x = self.to_patch_embedding(img)
        b, n, _ = x.shape
        cls_tokens = self.cls_token.expand(b, 1, -1)     # repeat '1 1 d -> b 1 d'
        x = torch.cat((cls_tokens, x), dim=1)
        x = x + self.pos_embedding[:, :(n + 1)]
        x = self.dropout(x)
        x = self.transformer(x)
        cls_token = x[:, 0]
        feature_map = x[:, 1:]
        pooled_output = cls_token if self.pool == 'cls' else feature_map.mean(dim=1)
        pooled_output = self.to_latent(pooled_output)
        classification_result = self.mlp_head(pooled_output)
        return {
            'cls_token': cls_token,
            'feature_map': feature_map,
            'classification_head_logits': classification_result
        }

    def run(self, img):
        out = self.forward(img)
        return out['classification_head_logits'], out['cls_token'], out['feature_map']


# ============================================================================ seed 004

class Residual(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x, **kwargs):
        return self.fn(x, **kwargs) + x


class MnistFeedForward(nn.Module):
    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, dim)
        )

    def forward(self, x):
        return self.net(x)


class MnistAttention(nn.Module):
    def __init__(self, dim, heads=8):
        super().__init__()
        self.heads = heads
        self.scale = dim ** -0.5            # the model width, as the seed has it
        self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        b, n, _, h = *x.shape, self.heads
        qkv = self.to_qkv(x)
        # rearrange(qkv, 'b n (qkv h d) -> qkv b h n d', qkv=3, h=h)
        q, k, v = qkv.reshape(b, n, 3, h, -1).permute(2, 0, 3, 1, 4)
        dots = torch.einsum('bhid,bhjd->bhij', q, k) * self.scale
        if mask is not None:
            mask = F.pad(mask.flatten(1), (1, 0), value=True)
            assert mask.shape[-1] == dots.shape[-1], 'mask has incorrect dimensions'
            mask = mask[:, None, :] * mask[:, :, None]
            dots.masked_fill_(~mask, float('-inf'))
            del mask
        attn = dots.softmax(dim=-1)
        out = torch.einsum('bhij,bhjd->bhid', attn, v)
        out = heads_merge(out)              # rearrange(out, 'b h n d -> b n (h d)')
        out = self.to_out(out)
        return out


class MnistTransformer(nn.Module):
    def __init__(self, dim, depth, heads, mlp_dim):
        super().__init__()
        self.layers = nn.ModuleList([])
        for _ in range(depth):
            self.layers.append(nn.ModuleList([
                Residual(PreNorm(dim, MnistAttention(dim, heads=heads))),
                Residual(PreNorm(dim, MnistFeedForward(dim, mlp_dim)))
            ]))

    def forward(self, x, mask=None):
        for attn, ff in self.layers:
            x = attn(x, mask=mask)
            x = ff(x)
        return x


class MnistViT(nn.Module):
    """The MNIST ViT of seed 004."""

    def __init__(self, *, image_size, patch_size, num_classes, dim, depth, heads, mlp_dim,
                 channels=3):
        super().__init__()
        assert image_size % patch_size == 0, 'image dimensions must be divisible by the patch size'
        num_patches = (image_size // patch_size) ** 2
        patch_dim = channels * patch_size ** 2
        self.patch_size = patch_size
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))
        self.patch_to_embedding = nn.Linear(patch_dim, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.transformer = MnistTransformer(dim, depth, heads, mlp_dim)
        self.to_cls_token = nn.Identity()
        self.mlp_head = nn.Sequential(
            nn.Linear(dim, mlp_dim),
            nn.GELU(),
            nn.Linear(mlp_dim, num_classes)
        )
        self._patches = RearrangePatches(patch_size, patch_size)

    def encode(self, img, mask=None):
        x = self._patches(img)              # rearrange 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)'
        x = self.patch_to_embedding(x)
        cls_tokens = self.cls_token.expand(img.shape[0], -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)
        x = x + self.pos_embedding
        return self.transformer(x, mask)

    def forward(self, img, mask=None):
        x = self.encode(img, mask)
        x = self.to_cls_token(x[:, 0])
        return self.mlp_head(x)

    def run(self, img):
        x = self.encode(img)
        return self.mlp_head(self.to_cls_token(x[:, 0])), x[:, 0], x[:, 1:]


# ============================================================================ seed 000 (Flax)

def flax_param_names(num_layers):
    """The flattened, '/'-joined parameter tree of the Flax ViT."""
    names = ["patches/conv/kernel", "patches/conv/bias", "patch_encoder/Dense_0/kernel",
             "patch_encoder/Dense_0/bias", "patch_encoder/cls_token",
             "patch_encoder/position_embedding"]
    for i in range(num_layers):
        e = f"encoder_{i}/"
        names += [e + "layer_norm/scale", e + "layer_norm/bias"]
        names += [f"{e}mha/{n}/{p}" for n in ("q_net", "k_net", "v_net", "proj_net")
                  for p in ("kernel", "bias")]
        names += [f"{e}mlp/{n}/{p}" for n in ("Dense_0", "Dense_1") for p in ("kernel", "bias")]
    return names + ["head/kernel", "head/bias"]


def flax_gelu(x):
    """flax.linen.gelu (jax.nn.gelu, approximate=True by default): the tanh form."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def flax_layer_norm(x, scale, bias, eps=1e-6):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) * torch.rsqrt(var + eps) * scale + bias


class FlaxSeedViT(nn.Module):
    """The Flax ViT of seed 000, in PyTorch. Parameters: {'/'-joined name: array}, loaded
    strictly (every name of `flax_param_names`, nothing else). Input NCHW, as onevit takes
    it; the Flax model sees the same images as NHWC."""

    def __init__(self, params: Mapping[str, np.ndarray], *, patch_size, embed_dim, hidden_dim,
                 n_heads, num_layers, mlp_dim, num_classes, drop_p=0.0, **unused):
        super().__init__()
        expected = set(flax_param_names(num_layers))
        missing, unexpected = sorted(expected - set(params)), sorted(set(params) - expected)
        if missing or unexpected:
            raise KeyError(f"Flax params: missing {missing}, unexpected {unexpected}")
        self.p = {k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in params.items()}
        self.patch_size, self.embed_dim, self.hidden_dim = patch_size, embed_dim, hidden_dim
        self.n_heads, self.num_layers = n_heads, num_layers
        assert self.p["patches/conv/kernel"].shape[-1] == embed_dim
        assert self.p["patch_encoder/Dense_0/kernel"].shape == (embed_dim, hidden_dim)
        assert self.p["encoder_0/mlp/Dense_0/kernel"].shape == (hidden_dim, mlp_dim)
        assert self.p["head/kernel"].shape == (hidden_dim, num_classes)

    def dense(self, x, name):
        return x @ self.p[name + "/kernel"] + self.p[name + "/bias"]   # kernel [in, out]

    def patches(self, images):
        """nn.Conv(embed_dim, kernel (P, P), strides (P, P), 'VALID') on NHWC, then (b, h*w, c)."""
        b, hh, ww, c = images.shape
        p = self.patch_size
        x = images.reshape(b, hh // p, p, ww // p, p, c)
        out = torch.einsum("bhywxc,yxce->bhwe", x, self.p["patches/conv/kernel"])
        out = out + self.p["patches/conv/bias"]
        b, h, w, c = out.shape
        return out.reshape(b, h * w, c)

    def patch_encoder(self, x):
        n, seq_len, _ = x.shape
        x = self.dense(x, "patch_encoder/Dense_0")
        cls = self.p["patch_encoder/cls_token"].expand(n, 1, self.hidden_dim)   # jnp.tile
        x = torch.cat([cls, x], dim=1)
        return x + self.p["patch_encoder/position_embedding"]

    def mha(self, x, e):
        B, T, C = x.shape
        N, D = self.n_heads, C // self.n_heads
        q = self.dense(x, e + "mha/q_net").reshape(B, T, N, D).permute(0, 2, 1, 3)
        k = self.dense(x, e + "mha/k_net").reshape(B, T, N, D).permute(0, 2, 1, 3)
        v = self.dense(x, e + "mha/v_net").reshape(B, T, N, D).permute(0, 2, 1, 3)
        weights = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(D)
        weights = torch.softmax(weights, dim=-1)
        out = torch.matmul(weights, v).permute(0, 2, 1, 3).reshape(B, T, C)
        return self.dense(out, e + "mha/proj_net")

    def encoder(self, inputs, e):
        ln = (self.p[e + "layer_norm/scale"], self.p[e + "layer_norm/bias"])
        x = flax_layer_norm(inputs, *ln)
        x = self.mha(x, e)
        x = inputs + x
        y = flax_layer_norm(x, *ln)
        y = self.dense(flax_gelu(self.dense(y, e + "mlp/Dense_0")), e + "mlp/Dense_1")
        return x + y

    def encode(self, images_nchw):
        x = self.patches(images_nchw.permute(0, 2, 3, 1))
        x = self.patch_encoder(x)
        for i in range(self.num_layers):
            x = self.encoder(x, f"encoder_{i}/")
        return x

    def forward(self, images_nchw):
        return self.dense(self.encode(images_nchw)[:, 0], "head")

    def run(self, images_nchw):
        x = self.encode(images_nchw)
        return self.dense(x[:, 0], "head"), x[:, 0], x[:, 1:]


# ============================================================================ loading

SEED_CLASSES = {"vit-pytorch": VitPytorchViT, "vit-pytorch-2023": VitPytorch2023ViT,
                "mnist-vit": MnistViT}


def build(family: str, kwargs: Mapping[str, object]) -> nn.Module:
    """An uninitialised seed model from its constructor arguments (a config.json's contents)."""
    k = {key: _pair_json(v) for key, v in kwargs.items() if key not in ("preprocess", "labels")}
    return SEED_CLASSES[family](**k)


def load(family: str, kwargs: Mapping[str, object], state: Mapping[str, object],
         dtype=torch.float64) -> nn.Module:
    """The seed model holding `state` (its own names; strict), in eval mode and `dtype`."""
    k = {key: _pair_json(v) for key, v in kwargs.items() if key not in ("preprocess", "labels")}
    if family == "flax-seed":
        return FlaxSeedViT({n: np.asarray(v) for n, v in state.items()}, **k).eval()
    model = build(family, k)
    sd = {n: v if isinstance(v, torch.Tensor) else torch.from_numpy(np.array(v)) for n, v in state.items()}
    model.load_state_dict(sd, strict=True)
    return model.eval().to(dtype)


def run(model: nn.Module, images: torch.Tensor) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logits [B, K], class token [B, D], patch tokens [B, N, D]) as float64 numpy."""
    with torch.no_grad():
        logits, cls, tokens = model.run(images.to(torch.float64))
    return logits.numpy(), cls.numpy(), tokens.numpy()


def state_names(model: nn.Module) -> Dict[str, Tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}
