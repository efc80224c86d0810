"""Masked reductions and reconstruction objectives, computed in float32; losses by name (`LOSSES`).

`LOSSES` registers each per-token loss once: a function `(pred, target, args) -> [...]`
that reduces the last (feature) axis, what target values it fits (`real` vectors or
discrete `codes`) and its argument declaration. `masked_loss` averages it over the tokens
that count. A method's `loss` section (`loss.kind`, `loss.smooth_l1.beta`, ...) is
generated from the registry (`mmjax.parts`).

  mse            mean over D of (pred - target)^2            (MAE)
  l1             mean over D of |pred - target|              (SimMIM)
  smooth_l1      mean over D of torch's smooth_l1 (beta)     (MaskDistill, data2vec)
  cosine         1 - cos(pred, target) over D                (feature targets)
  cross_entropy  -log softmax(pred)[target], target int codes (BEiT, MLM)

`frequency_loss` compares whole images in the Fourier domain (MFM), on removed frequencies only.
`pairwise_ranking_loss` and `normalized_regression_loss` train a per-token loss predictor (HPM).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from mmjax.config import knob
from mmjax.parts import Chosen, Parts


def masked_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
    """`sum(values * weights) / sum(weights)`; 0 (not NaN) when no weight is set.

    Args:
      values: `[...]`.
      weights: same shape as `values` (bool or float), e.g. `Mask.mask`.

    Returns:
      float32 scalar.
    """
    values = values.astype(jnp.float32)
    weights = weights.astype(jnp.float32)
    total = jnp.sum(weights)
    return jnp.sum(values * weights) / jnp.where(total > 0, total, 1.0)


def masked_cross_entropy(logits: jax.Array, targets: jax.Array, weights: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean softmax cross-entropy of int targets `[...]` from logits `[..., V]` over the True `weights`
    `[...]`, and the argmax accuracy there (both 0 where nothing is weighted)."""
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    count = jnp.maximum(jnp.sum(weights), 1)
    correct = (jnp.argmax(logits, axis=-1) == targets) & weights
    return jnp.sum(jnp.where(weights, ce, 0.0)) / count, jnp.sum(correct) / count


def frequency_loss(pred: jax.Array, images: jax.Array, removed: jax.Array) -> jax.Array:
    """MFM's loss: the mean distance `|F(pred) - F(images)|` over the removed Fourier coefficients.

    The spectra are orthonormal 2-D FFTs per channel, centered (`fftshift`) as `removed`; the
    distance is the complex modulus, `sqrt(re^2 + im^2 + 1e-12)` (the reference's focal
    frequency loss at `gamma = 1`, no spectrum weight matrix).

    Args:
      pred: `[B, H, W, C]` predicted images.
      images: `[B, H, W, C]` true images.
      removed: bool `[B, H, W]` over the centered spectrum, True = removed from the input.

    Returns:
      float32 scalar: the sum over removed coefficients and channels over their count.
    """
    diff = jnp.fft.fft2(pred.astype(jnp.float32) - images.astype(jnp.float32), axes=(1, 2), norm="ortho")
    diff = jnp.fft.fftshift(diff, axes=(1, 2))
    distance = jnp.sqrt(jnp.real(diff) ** 2 + jnp.imag(diff) ** 2 + 1e-12)
    return masked_mean(distance, jnp.broadcast_to(removed[..., None], distance.shape))


def pairwise_ranking_loss(pred: jax.Array, target: jax.Array, weights: jax.Array) -> jax.Array:
    """HPM's relative objective: learn which of two tokens has the larger target, for every pair.

    For each example and each ordered pair `(i, j)` of counted tokens, binary cross-entropy
    of `sigmoid(pred_j - pred_i)` against `target_j > target_i`; pairs with equal targets
    (the diagonal) carry no label. The sum over pairs is divided by the labelled pairs.

    Args:
      pred: float `[B, N]` predicted scores.
      target: float `[B, N]` (e.g. each patch's reconstruction loss, no gradient).
      weights: bool `[B, N]`, the tokens that count (e.g. the hidden ones).

    Returns:
      float32 scalar.
    """
    pred, target = pred.astype(jnp.float32), target.astype(jnp.float32)
    diff = pred[:, None, :] - pred[:, :, None]  # [B, i, j] = pred_j - pred_i
    larger = target[:, None, :] > target[:, :, None]
    smaller = target[:, None, :] < target[:, :, None]
    pairs = weights[:, None, :] & weights[:, :, None]
    bce = -(larger * jax.nn.log_sigmoid(diff) + smaller * jax.nn.log_sigmoid(-diff))
    labelled = jnp.sum((larger | smaller) & pairs)
    return jnp.sum(bce * pairs) / jnp.maximum(labelled, 1)


def normalized_regression_loss(pred: jax.Array, target: jax.Array, weights: jax.Array) -> jax.Array:
    """HPM's absolute objective: MSE to the target standardized per example over the counted tokens.

    Args:
      pred, target: float `[B, N]`; weights: bool `[B, N]`.

    Returns:
      float32 scalar: the mean over counted tokens of `(pred - (target - mean) / sqrt(var + 1e-6))^2`,
      mean and unbiased variance over each example's counted tokens.
    """
    w = weights.astype(jnp.float32)
    count = jnp.sum(w, axis=1, keepdims=True)
    mean = jnp.sum(target * w, axis=1, keepdims=True) / jnp.maximum(count, 1)
    var = jnp.sum((target - mean) ** 2 * w, axis=1, keepdims=True) / jnp.maximum(count - 1, 1)
    standard = (target - mean) / jnp.sqrt(var + 1e-6)
    return masked_mean((pred.astype(jnp.float32) - standard) ** 2, weights)


def normalize_patches(patches: jax.Array, eps: float = 1e-6) -> jax.Array:
    """MAE's `norm_pix_loss` target: per patch `(t - mean) / sqrt(var + eps)`.

    The variance is the unbiased one (`ddof=1`), as torch's default in the reference.

    Args:
      patches: `[..., P]` with `P > 1`.
    """
    if patches.shape[-1] < 2:
        raise ValueError(f"normalize_patches needs at least 2 values per patch, got {patches.shape[-1]}")
    patches = patches.astype(jnp.float32)
    mean = jnp.mean(patches, axis=-1, keepdims=True)
    var = jnp.var(patches, axis=-1, keepdims=True, ddof=1)
    return (patches - mean) / jnp.sqrt(var + eps)


def masked_mse(pred: jax.Array, target: jax.Array, mask: jax.Array, *, norm_pix: bool = False) -> jax.Array:
    """MAE reconstruction loss: per-patch MSE, averaged over hidden patches only.

    Args:
      pred: `[B, N, P]` predicted patches.
      target: `[B, N, P]` true patches (`mmjax.ops.patchify` of the images).
      mask: bool `[B, N]`, True = hidden (where the loss counts).
      norm_pix: normalise each target patch first (`normalize_patches`).

    Returns:
      float32 scalar.
    """
    if pred.shape != target.shape or pred.shape[:2] != mask.shape:
        raise ValueError(f"pred {pred.shape}, target {target.shape} and mask {mask.shape} do not match")
    target = normalize_patches(target) if norm_pix else target.astype(jnp.float32)
    per_patch = jnp.mean(jnp.square(pred.astype(jnp.float32) - target), axis=-1)
    return masked_mean(per_patch, mask)


def masked_l1(pred: jax.Array, target: jax.Array, mask: jax.Array) -> jax.Array:
    """SimMIM's loss: mean absolute error over the pixels of hidden patches only.

    Equals the reference's `sum(|x - x_rec| * mask) / (num_hidden_pixels * C)` (without its
    1e-5 in the denominator: an empty mask gives 0 here).

    Args:
      pred, target: `[B, N, P]` patch vectors.
      mask: bool `[B, N]`, True = hidden.
    """
    if pred.shape != target.shape or pred.shape[:2] != mask.shape:
        raise ValueError(f"pred {pred.shape}, target {target.shape} and mask {mask.shape} do not match")
    per_patch = jnp.mean(jnp.abs(pred.astype(jnp.float32) - target.astype(jnp.float32)), axis=-1)
    return masked_mean(per_patch, mask)


def gaussian_kl(mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """`KL(N(mean, exp(logvar)) || N(0, 1))` summed over the last axis: `[..., C] -> [...]`, float32."""
    mean, logvar = mean.astype(jnp.float32), logvar.astype(jnp.float32)
    return 0.5 * jnp.sum(mean**2 + jnp.exp(logvar) - 1.0 - logvar, axis=-1)


def smooth_l1(pred: jax.Array, target: jax.Array, beta: float = 1.0) -> jax.Array:
    """torch's `smooth_l1_loss` elementwise: `0.5 d^2 / beta` if `|d| < beta`, else `|d| - 0.5 beta`."""
    diff = jnp.abs(pred.astype(jnp.float32) - target.astype(jnp.float32))
    return jnp.where(diff < beta, 0.5 * diff**2 / beta, diff - 0.5 * beta)


def cosine_distance(pred: jax.Array, target: jax.Array, eps: float = 1e-8) -> jax.Array:
    """`1 - cos(pred, target)` over the last axis: `[..., D] -> [...]`."""
    pred, target = pred.astype(jnp.float32), target.astype(jnp.float32)
    dot = jnp.sum(pred * target, axis=-1)
    norms = jnp.linalg.norm(pred, axis=-1) * jnp.linalg.norm(target, axis=-1)
    return 1.0 - dot / jnp.maximum(norms, eps)


LOSSES = Parts("loss", "loss kind")


@LOSSES.register("mse", fits=("real",))
def _mse(pred, target, args):
    """Mean squared error over the feature axis."""
    return jnp.mean(jnp.square(pred.astype(jnp.float32) - target.astype(jnp.float32)), axis=-1)


@LOSSES.register("l1", fits=("real",))
def _l1(pred, target, args):
    """Mean absolute error over the feature axis."""
    return jnp.mean(jnp.abs(pred.astype(jnp.float32) - target.astype(jnp.float32)), axis=-1)


@dataclasses.dataclass(frozen=True)
class SmoothL1Args:
    """`loss.smooth_l1`: the transition point between the quadratic and the linear part."""

    beta: float = knob(1.0, "quadratic below |d| < beta", low=0, low_open=True)


@LOSSES.register("smooth_l1", fits=("real",), args=SmoothL1Args)
def _smooth_l1(pred, target, args):
    """torch's smooth L1, averaged over the feature axis."""
    return jnp.mean(smooth_l1(pred, target, args.beta), axis=-1)


@LOSSES.register("cosine", fits=("real",))
def _cosine(pred, target, args):
    """`1 - cos` between prediction and target vectors."""
    return cosine_distance(pred, target)


@LOSSES.register("cross_entropy", fits=("codes",))
def _cross_entropy(pred, target, args):
    """Softmax cross-entropy of logits `[..., V]` against int codes `[...]`."""
    logits = pred.astype(jnp.float32)
    picked = jnp.take_along_axis(logits, target[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return jax.nn.logsumexp(logits, axis=-1) - picked


def token_loss(chosen: Chosen, pred: jax.Array, target: jax.Array) -> jax.Array:
    """The chosen loss per token: `[..., D]` (or int codes `[...]`) -> float32 `[...]`."""
    return chosen.part.fn(pred, target, chosen.args)


def masked_loss(chosen: Chosen, pred: jax.Array, target: jax.Array, weights: jax.Array) -> jax.Array:
    """The chosen loss averaged over the tokens where `weights` (bool or float `[..., T]`) is set; 0 if none.

    Args:
      pred: `[..., T, D]` (logits `[..., T, V]` for `cross_entropy`).
      target: `[..., T, D]` (int `[..., T]` for `cross_entropy`).
      weights: `[..., T]`, e.g. `Mask.mask`.
    """
    real = chosen.part.fits != ("codes",)
    if (real and pred.shape != target.shape) or pred.shape[:-1] != weights.shape:
        raise ValueError(f"pred {pred.shape}, target {target.shape} and mask {weights.shape} do not match")
    return masked_mean(token_loss(chosen, pred, target), weights)


def loss_section(default: str, fits: str = "real", **arg_overrides: dict):
    """The `loss` ConfigDict: `kind=default` plus each fitting kind's args."""
    return LOSSES.section_config(default, fits, **arg_overrides)
