"""`python -m mmjax sample`: generate images from a trained generator (MaskGIT, GIVT, MAR) and write a PNG grid.

The command loads the run (`mmjax.train.load_trained`) and calls `sample_images`; the pure
decoding that methods use is `mmjax.generate`.
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import numpy as np

from mmjax.data.transforms import denormalize_images
from mmjax.evaluate.figures import image_grid, save_png


def sample_images(
    config: Any,
    method: Any,
    params: Any,
    num: int,
    class_id: int | None = None,
    *,
    steps: int | None = None,
    guidance: float | None = None,
    seed: int = 0,
    out: str,
) -> str:
    """Generate `num` images of class `class_id` (None: one row per class) and save them as a PNG grid.

    Args:
      config, method, params: a trained MaskGIT, GIVT or MAR run (`mmjax.train.load_trained`; its
        params hold the frozen tokenizer).
      num: images per class.
      class_id: the class to generate; None generates every class, one row each.
      steps, guidance: decoding steps and guidance scale (default: the config's `sample` section).
      seed: PRNG seed of the decode.
      out: the PNG path, or a directory to write `samples[_class{C}].png` into.

    Returns:
      The PNG path.
    """
    if not hasattr(method, "sampler") or not hasattr(method, "decode_images"):
        raise ValueError(f"a {config.method!r} run does not generate; expected maskgit, givt or mar")
    classes = method.options.num_classes
    if num < 1:
        raise ValueError(f"--num must be >= 1, got {num}")
    if class_id is not None and not 0 <= class_id < classes:
        raise ValueError(f"--class={class_id} is not a class of this model: expected 0..{classes - 1}")
    labels = np.repeat(np.arange(classes) if class_id is None else np.array([class_id]), num).astype(np.int32)
    sample = method.sampler(num_steps=steps, guidance=guidance)
    codes = sample(params, jax.random.key(seed), labels)
    images = denormalize_images(method.decode_images(params, codes), config.data.mean, config.data.std)
    per_row = num if class_id is None else math.ceil(math.sqrt(num))  # one class: a square-ish grid
    num_rows = math.ceil(len(images) / per_row)
    blank = np.full((num_rows * per_row - len(images), *images.shape[1:]), 255, np.uint8)
    rows = list(np.concatenate([images, blank]).reshape(num_rows, per_row, *images.shape[1:]))
    if os.path.isdir(out):
        suffix = "" if class_id is None else f"_class{class_id}"
        out = os.path.join(out, f"samples{suffix}.png")
    labels = [f"class {c}" for c in range(classes)] if class_id is None else [f"class {class_id}"] * num_rows
    save_png(out, image_grid(rows, scale=max(1, 64 // images.shape[1]), labels=labels))
    return out
