"""Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) of a batch, as timm's `Mixup` in batch mode.

One mixing weight per batch; each image is mixed with the image at the mirrored batch position
(`images[::-1]`), and so are the (already smoothed) label distributions. With both alphas set,
CutMix is used with probability `switch_prob` and Mixup otherwise. CutMix pastes a box of area
about `1 - lam` (side `sqrt(1 - lam)` of the image's, centred anywhere, clipped to the image) and
then sets `lam` to the share of pixels left unpasted.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def cutmix_box(rng: jax.Array, lam: jax.Array, height: int, width: int) -> tuple[jax.Array, jax.Array]:
    """A box of area about `(1 - lam) * H * W` as a bool mask `[H, W]` (True = pasted), and its exact share."""
    ratio = jnp.sqrt(1.0 - lam)
    cut_h, cut_w = (height * ratio).astype(jnp.int32), (width * ratio).astype(jnp.int32)
    cy, cx = jax.random.randint(rng, (2,), 0, jnp.array([height, width]))
    y0, y1 = jnp.clip(cy - cut_h // 2, 0, height), jnp.clip(cy + cut_h // 2, 0, height)
    x0, x1 = jnp.clip(cx - cut_w // 2, 0, width), jnp.clip(cx + cut_w // 2, 0, width)
    rows, cols = jnp.arange(height)[:, None], jnp.arange(width)[None, :]
    box = (rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)
    return box, jnp.mean(box.astype(jnp.float32))


def mix_batch(
    rng: jax.Array,
    images: jax.Array,
    targets: jax.Array,
    mixup_alpha: float,
    cutmix_alpha: float,
    switch_prob: float = 0.5,
) -> tuple[jax.Array, jax.Array]:
    """Mix a batch with its mirror image.

    Args:
      images: `[B, H, W, C]`.
      targets: float `[B, K]` label distributions (one-hot or smoothed).
      mixup_alpha, cutmix_alpha: Beta(alpha, alpha) for the weight of each; 0 turns one off.

    Returns:
      `(images [B, H, W, C], targets [B, K])`, both `lam * own + (1 - lam) * mirrored`
      (CutMix: the box's pixels from the mirrored image, `lam` the unpasted share).
    """
    if mixup_alpha <= 0 and cutmix_alpha <= 0:
        return images, targets
    switch_key, mixup_key, cutmix_key, box_key = jax.random.split(rng, 4)
    mirrored, mirrored_targets = images[::-1], targets[::-1]
    lam_mixup = jax.random.beta(mixup_key, mixup_alpha, mixup_alpha) if mixup_alpha > 0 else jnp.float32(1.0)
    mixed = lam_mixup * images + (1.0 - lam_mixup) * mirrored
    if cutmix_alpha <= 0:
        return mixed.astype(images.dtype), lam_mixup * targets + (1.0 - lam_mixup) * mirrored_targets
    box, pasted = cutmix_box(box_key, jax.random.beta(cutmix_key, cutmix_alpha, cutmix_alpha), *images.shape[1:3])
    cut = jnp.where(box[None, :, :, None], mirrored, images)
    use_cutmix = jax.random.uniform(switch_key) < switch_prob if mixup_alpha > 0 else jnp.bool_(True)
    lam = jnp.where(use_cutmix, 1.0 - pasted, lam_mixup)
    out = jnp.where(use_cutmix, cut, mixed).astype(images.dtype)
    return out, lam * targets + (1.0 - lam) * mirrored_targets


__all__ = ["cutmix_box", "mix_batch"]
