"""GIVT's output head: one linear map from transformer features to a diagonal Gaussian mixture."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.models.initializers import with_axes, xavier_uniform, zeros
from mmjax.ops.gmm import GMM, gmm_output_dim, split_gmm


class GMMHead(nn.Module):
    """Features `[..., W]` -> a `GMM` over R^dim with `num_components` components per position.

    The projection has `K + 2 K D` outputs laid out as big_vision's GIVT (`split_gmm`); the mixture is
    evaluated in float32 whatever `dtype` the projection runs in.
    """

    num_components: int
    dim: int
    min_scale: float = 1e-6
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, features: jax.Array) -> GMM:
        raw = nn.Dense(
            gmm_output_dim(self.num_components, self.dim),
            dtype=self.dtype,
            param_dtype=jnp.float32,
            kernel_init=with_axes(xavier_uniform(), ("embed", None)),
            bias_init=with_axes(zeros, (None,)),
            name="proj",
        )(features)
        return split_gmm(raw, self.num_components, self.dim, self.min_scale)
