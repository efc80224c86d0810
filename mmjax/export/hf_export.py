"""Write an mmjax MAE as a directory that transformers loads with `ViTMAEForPreTraining.from_pretrained`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from mmjax.export.atomic import atomic_directory
from mmjax.export.hf_vitmae import to_hf_vitmae
from mmjax.methods.mae import MAE


def save_hf_vitmae(mae: MAE, params: Mapping[str, Any], out: str | os.PathLike, force: bool = False) -> str:
    """Write `config.json` and `model.safetensors` (HF 5.x key names) to `out` atomically.

    Needs `safetensors` only (no torch); `load_hf_vitmae(out)` reads it back bitwise.
    """
    from safetensors.numpy import save_file

    state, hf_config = to_hf_vitmae(mae, params)
    with atomic_directory(out, force) as tmp:
        save_file(state, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(hf_config, f, indent=2)
    return os.fspath(out)
