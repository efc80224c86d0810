"""TimesBERT (Zhang et al. 2025) model: one BERT-style sequence over the patches of every variate.

A window of V variates reads like a document of V sentences:

    [DOM] | p(1,1) ... p(1,P) [VAR] | p(2,1) ... p(2,P) [VAR] | ... | p(V,1) ... p(V,P) [VAR]

`N = 1 + V * (P + 1)` tokens: the [DOM] token first (the sample's domain), each variate's patches
followed by its [VAR] token. Hidden patches are replaced by a learned [MASK] embedding; positions
are learned over the whole sequence (absolute, up to `max_variates` variates).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mmjax.models.config import TransformerConfig
from mmjax.models.initializers import normal, with_axes, xavier_uniform, zeros
from mmjax.models.token_mae import TokenEncoder


def sequence_length(num_variates: int, num_patches: int) -> int:
    """N = 1 + V (P + 1): tokens of a window of V variates with P patches each."""
    return 1 + num_variates * (num_patches + 1)


def token_positions(num_variates: int, num_patches: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Where each token sits in the sequence: `(dom, var [V], patches [V, P])` indices into `[0, N)`."""
    starts = 1 + np.arange(num_variates) * (num_patches + 1)
    return 0, starts + num_patches, starts[:, None] + np.arange(num_patches)[None]


def _dense(features: int, in_axis, out_axis, name: str) -> nn.Dense:
    return nn.Dense(
        features,
        kernel_init=with_axes(xavier_uniform(), (in_axis, out_axis)),
        bias_init=with_axes(zeros, (out_axis,)),
        name=name,
    )


class TimesBERTModel(nn.Module):
    """Patches of all variates + functional tokens -> one transformer -> patch values and token logits.

    Attributes:
      num_patches: P, patches per variate.
      patch_len: p, time steps per patch.
      max_variates: the most variates a window may have (size of the position table).
      width: token width; transformer: the blocks (depth, heads, MLP, attention...).
      num_domains: classes of the [DOM] head (0: no domain head).
      variate_head: whether the [VAR] tokens get a swapped-variate logit head.
    """

    num_patches: int
    patch_len: int
    max_variates: int
    width: int
    transformer: TransformerConfig
    num_domains: int = 0
    variate_head: bool = True

    def setup(self):
        self.embed = _dense(self.width, None, "embed", "embed")
        token = with_axes(normal(0.02), ("embed",))
        self.mask_token = self.param("mask_token", token, (self.width,))
        self.dom_token = self.param("dom_token", token, (self.width,))
        self.var_token = self.param("var_token", token, (self.width,))
        self.positions = self.param(
            "pos_embedding",
            with_axes(normal(0.02), (None, "embed")),
            (sequence_length(self.max_variates, self.num_patches), self.width),
        )
        self.encoder = TokenEncoder(width=self.width, transformer=self.transformer, cls_token=False)
        self.patch_head = _dense(self.patch_len, "embed", None, "patch_head")
        if self.variate_head:
            self.var_head = _dense(1, "embed", None, "var_head")
        if self.num_domains:
            self.dom_head = _dense(self.num_domains, "embed", None, "dom_head")

    def sequence(self, patches: jax.Array, hidden: jax.Array | None = None) -> jax.Array:
        """`[B, V, P, p]` normalized patches, bool `[B, V * P]` hidden -> input tokens `[B, N, D]` (+ positions)."""
        batch, variates, num_patches, patch_len = patches.shape
        if (num_patches, patch_len) != (self.num_patches, self.patch_len):
            raise ValueError(
                f"patches must be [B, V, {self.num_patches}, {self.patch_len}] (window / patch_len, patch_len); "
                f"got {patches.shape}"
            )
        if variates > self.max_variates:
            raise ValueError(f"series has {variates} variates; timesbert.max_variates={self.max_variates} at most")
        x = self.embed(patches)
        if hidden is not None:
            x = jnp.where(hidden.reshape(batch, variates, num_patches, 1), self.mask_token, x)
        var = jnp.broadcast_to(self.var_token, (batch, variates, 1, self.width))
        x = jnp.concatenate([x, var], axis=2).reshape(batch, variates * (num_patches + 1), self.width)
        dom = jnp.broadcast_to(self.dom_token, (batch, 1, self.width))
        x = jnp.concatenate([dom, x], axis=1)
        return x + self.positions[: x.shape[1]]

    def encode(self, patches: jax.Array, hidden: jax.Array | None = None) -> dict[str, jax.Array]:
        """Encoder outputs by role: `dom` `[B, D]`, `var` `[B, V, D]`, `patches` `[B, V, P, D]`."""
        batch, variates, num_patches, _ = patches.shape
        tokens, _ = self.encoder(self.sequence(patches, hidden))
        body = tokens[:, 1:].reshape(batch, variates, num_patches + 1, self.width)
        return {"dom": tokens[:, 0], "var": body[:, :, -1], "patches": body[:, :, :-1]}

    def __call__(self, patches: jax.Array, hidden: jax.Array | None = None) -> dict[str, jax.Array]:
        """Predictions: `patches` `[B, V, P, p]` (normalized units), and where the heads exist
        `variate` logits `[B, V]` (swapped in?) and `domain` logits `[B, num_domains]`."""
        encoded = self.encode(patches, hidden)
        out = {"patches": self.patch_head(encoded["patches"])}
        if self.variate_head:
            out["variate"] = self.var_head(encoded["var"])[..., 0]
        if self.num_domains:
            out["domain"] = self.dom_head(encoded["dom"])
        return out
