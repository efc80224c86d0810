"""End-of-run numbers of an image tokenizer: reconstruction error and how it uses its codebook.

Over the whole test split: the pixel MSE of `method.forward`'s reconstructions (in normalized
units, the space the tokenizer is trained in), codebook usage (the share of the vocabulary
used at least once) and the perplexity of the code histogram (`exp` of its entropy: 1 when one
code is used, the vocabulary size when all are used equally). A baseline row gives the MSE of
predicting every pixel by the dataset mean (0 in normalized units). A tokenizer with continuous
latents (`vae`) reports the pixel MSE of its posterior mean and the KL to the prior per token
(`latent_tokenizer_results`) instead of the codebook numbers.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mmjax.data.pipeline import eval_dataset, padded_batches
from mmjax.data.sources import evaluated_split
from mmjax.data.transforms import normalize_images
from mmjax.losses import gaussian_kl
from mmjax.methods.protocol import EvalResult
from mmjax.models import quantizers as q

PROTOCOL = "tokenizer reconstruction"
PIXEL_MSE = "pixel MSE (normalized units)"


def tokenizer_results(config: Any, method: Any, params: Any) -> list[EvalResult]:
    """Rows of protocol `tokenizer reconstruction` on the test split.

    Args:
      config: the run's config (`data`, `eval.batch_size`, `method`).
      method: a tokenizer with `forward(params, images) -> (reconstruction, ids, ...)` on
        normalized images and `vocab_size`.
      params: its params (host or device).

    Returns:
      `<method> tokenizer`: `pixel MSE (normalized units)`, `codebook usage` (a share),
      `code perplexity`; baseline `dataset mean`: `pixel MSE (normalized units)`.
    """
    data, size, vocab = config.data, config.eval.batch_size, method.vocab_size

    @jax.jit
    def statistics(p, images, valid):
        x = normalize_images(images, data.mean, data.std)
        recon, ids = method.forward(p, x)[:2]
        per_example = jnp.mean((recon.astype(jnp.float32) - x) ** 2, axis=tuple(range(1, x.ndim)))
        baseline = jnp.mean(x**2, axis=tuple(range(1, x.ndim)))
        where = valid.reshape(-1, *([1] * (ids.ndim - 1)))
        counts = q.code_counts(jnp.where(where, ids, vocab), vocab + 1)[:vocab]  # padding counts as code `vocab`
        return jnp.sum(jnp.where(valid, per_example, 0.0)), jnp.sum(jnp.where(valid, baseline, 0.0)), counts

    params = jax.device_put(params)
    squared, baseline, counts, examples = 0.0, 0.0, np.zeros(vocab), 0
    for batch, n in padded_batches(eval_dataset(data, "test", size), size):
        valid = np.arange(size) < n
        s, b, c = jax.device_get(statistics(params, batch["image"], valid))
        squared, baseline, counts, examples = squared + float(s), baseline + float(b), counts + c, examples + n
    counts = jnp.asarray(counts, jnp.float32)
    name, split = f"{config.method} tokenizer", evaluated_split(data)
    return [
        EvalResult(PROTOCOL, name, PIXEL_MSE, squared / examples, split=split),
        EvalResult(PROTOCOL, name, "codebook usage", float(q.codebook_usage(counts)), split=split),
        EvalResult(PROTOCOL, name, "code perplexity", float(q.code_perplexity(counts)), split=split),
        EvalResult(PROTOCOL, "dataset mean", PIXEL_MSE, baseline / examples, baseline=True, split=split),
    ]


KL = "KL per token (nats)"


def latent_tokenizer_results(config: Any, method: Any, params: Any) -> list[EvalResult]:
    """Rows of protocol `tokenizer reconstruction` for a VAE on the test split.

    Args:
      method: a tokenizer with `forward(params, images) -> (reconstruction, mean, logvar)` on
        normalized images (the reconstruction decodes the posterior mean).

    Returns:
      `<method> tokenizer`: `pixel MSE (normalized units)`, `KL per token (nats)`, `latent std`
      (the spread of the posterior means); baseline `dataset mean`: `pixel MSE (normalized units)`.
    """
    data, size = config.data, config.eval.batch_size
    axes = (1, 2, 3)

    @jax.jit
    def statistics(p, images, valid):
        x = normalize_images(images, data.mean, data.std)
        recon, mean, logvar = method.forward(p, x)
        squared = jnp.mean((recon.astype(jnp.float32) - x) ** 2, axis=axes)
        kl = jnp.mean(gaussian_kl(mean, logvar), axis=(1, 2))
        sums = [squared, jnp.mean(x**2, axis=axes), kl, jnp.mean(mean, axis=axes), jnp.mean(mean**2, axis=axes)]
        return [jnp.sum(jnp.where(valid, v, 0.0)) for v in sums]

    params = jax.device_put(params)
    totals, examples = np.zeros(5), 0
    for batch, n in padded_batches(eval_dataset(data, "test", size), size):
        totals += np.asarray(
            [float(v) for v in jax.device_get(statistics(params, batch["image"], np.arange(size) < n))]
        )
        examples += n
    squared, baseline, kl, first, second = totals / examples
    name, split = f"{config.method} tokenizer", evaluated_split(data)
    return [
        EvalResult(PROTOCOL, name, PIXEL_MSE, squared, split=split),
        EvalResult(PROTOCOL, name, KL, kl, split=split),
        EvalResult(PROTOCOL, name, "latent std", float(np.sqrt(max(0.0, second - first**2))), split=split),
        EvalResult(PROTOCOL, "dataset mean", PIXEL_MSE, baseline, baseline=True, split=split),
    ]


__all__ = ["KL", "PIXEL_MSE", "PROTOCOL", "latent_tokenizer_results", "tokenizer_results"]
