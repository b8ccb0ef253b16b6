"""The JSON snapshots of other libraries' registries (timm_registry.json, openclip_registry.json),
read once per process."""

import functools
import json


@functools.lru_cache(maxsize=None)
def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)
