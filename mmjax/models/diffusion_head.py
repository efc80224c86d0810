"""MAR's per-token denoiser: a residual MLP with adaptive LayerNorm (MAR's `SimpleMLPAdaLN`).

The noisy token is projected to `width`, passes `depth` residual blocks modulated (shift, scale, gate)
by `time embedding + projected condition`, and a modulated final layer maps it back to D. As in MAR,
the modulation layers and the output layer start at zero, so a fresh head predicts zero noise.
Deviation: one output per channel (the noise), not MAR's two (noise and variance); see
`mmjax.ops.diffusion`.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.models.initializers import normal, ones, with_axes, xavier_uniform, zeros

FREQUENCY_DIM = 256


def timestep_embedding(t: jax.Array, dim: int = FREQUENCY_DIM, max_period: float = 10000.0) -> jax.Array:
    """Sinusoidal features `[M, dim]` of integer steps `[M]`: `[cos(t f_i), sin(t f_i)]`,
    `f_i = max_period^(-i / (dim / 2))` (the DiT / MAR layout, cosines first)."""
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = t.astype(jnp.float32)[:, None] * freqs[None]
    return jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)


def _dense(features: int, dtype, name: str, kernel_init=None, axes=("embed", "mlp")) -> nn.Dense:
    return nn.Dense(
        features,
        dtype=dtype,
        param_dtype=jnp.float32,
        kernel_init=with_axes(kernel_init or xavier_uniform(), axes),
        bias_init=with_axes(zeros, (axes[1],)),
        name=name,
    )


def _modulate(x: jax.Array, shift: jax.Array, scale: jax.Array) -> jax.Array:
    return x * (1 + scale) + shift


class AdaLNBlock(nn.Module):
    """`x + gate * MLP(modulate(LN(x), shift, scale))` with (shift, scale, gate) from the condition."""

    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
        width = x.shape[-1]
        shift, scale, gate = jnp.split(
            _dense(3 * width, self.dtype, "modulation", zeros, ("mlp", None))(nn.silu(y)), 3, axis=-1
        )
        h = nn.LayerNorm(
            epsilon=1e-6,
            dtype=self.dtype,
            param_dtype=jnp.float32,
            scale_init=with_axes(ones, (None,)),
            bias_init=with_axes(zeros, (None,)),
            name="norm",
        )(x)
        h = _dense(width, self.dtype, "fc1", axes=(None, "mlp"))(_modulate(h, shift, scale))
        h = _dense(width, self.dtype, "fc2", axes=("mlp", None))(nn.silu(h))
        return x + (gate * h).astype(x.dtype)


class DiffusionHead(nn.Module):
    """`(x_t [M, D], t int [M], cond [M, C]) -> predicted noise [M, D]` (float32).

    Attributes:
      dim: token channels D.
      width: MLP width (MAR `diffloss_w`, 1024 for MAR-B).
      depth: residual blocks (MAR `diffloss_d`, 6 for MAR-B).
    """

    dim: int
    width: int = 1024
    depth: int = 6
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x_t: jax.Array, t: jax.Array, cond: jax.Array) -> jax.Array:
        w = self.width
        time = _dense(w, self.dtype, "time_fc1", normal(0.02), (None, "mlp"))(timestep_embedding(t))
        time = _dense(w, self.dtype, "time_fc2", normal(0.02), ("mlp", None))(nn.silu(time))
        y = time + _dense(w, self.dtype, "cond_proj")(cond)
        x = _dense(w, self.dtype, "input_proj", axes=(None, "mlp"))(x_t).astype(jnp.float32)
        for i in range(self.depth):
            x = AdaLNBlock(self.dtype, name=f"block{i}")(x, y)
        shift, scale = jnp.split(_dense(2 * w, self.dtype, "final_modulation", zeros, ("mlp", None))(nn.silu(y)), 2, -1)
        h = nn.LayerNorm(epsilon=1e-6, use_scale=False, use_bias=False, dtype=self.dtype, name="final_norm")(x)
        out = _dense(self.dim, self.dtype, "out", zeros, ("mlp", None))(_modulate(h, shift, scale))
        return out.astype(jnp.float32)
