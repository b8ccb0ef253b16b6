"""The sizes of a ViT that every source states and every model file holds: what a --arch or
--config says (spec.ModelSpec) and what a file is written with (architecture.Architecture) share
them, and what follows from them."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Geometry:
    image_height: int
    image_width: int
    channels: int
    patch_size: int
    dim: int
    depth: int
    heads: int
    head_dim: int
    mlp_dim: int

    @property
    def inner_dim(self):
        return self.heads * self.head_dim

    @property
    def patch_dim(self):
        return self.channels * self.patch_size * self.patch_size

    @property
    def grid_tokens(self):
        return (self.image_height // self.patch_size) * (self.image_width // self.patch_size)
