"""INPUT as a folder: a model downloaded from a hub (huggingface-cli download, git clone) holds
its weights and its config side by side; the converter finds both.

    model.safetensors | model.safetensors.index.json (shards) | pytorch_model.bin
    | open_clip_model.safetensors | open_clip_pytorch_model.bin | model.onnx     the weights
    config.json | open_clip_config.json                                         the config
    preprocessor_config.json                                  read beside config.json (config.py)
"""

import os

from .errors import ConvertError

# First found wins: the formats a hub folder holds, safest first.
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
           "open_clip_model.safetensors", "open_clip_pytorch_model.bin", "model.onnx")
CONFIGS = ("config.json", "open_clip_config.json")


def resolve(path, config, find_config=True):
    """(weights file, config file or None, notes) for INPUT `path` and --config `config`; a
    folder's own config is taken when `find_config` (no --config, no --arch)."""
    if not os.path.isdir(path):
        return path, config, []
    present = [name for name in WEIGHTS if os.path.isfile(os.path.join(path, name))]
    if not present:
        raise ConvertError(f"{path}: a folder without a checkpoint (looked for {', '.join(WEIGHTS)}); "
                           f"give the weights file itself")
    notes = []
    if len(present) > 1:
        notes.append(f"{path}: reading {present[0]} (also there: {', '.join(present[1:])})")
    if config is None and find_config:
        config = next((os.path.join(path, n) for n in CONFIGS if os.path.isfile(os.path.join(path, n))), None)
    return os.path.join(path, present[0]), config, notes
