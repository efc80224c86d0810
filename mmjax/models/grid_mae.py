"""MAE over patch vectors on any token grid (video tubelets, spectrogram patches).

The modality cuts its input into patch vectors `[B, N, P]` on a grid of 2 or 3 axes;
this model embeds them linearly, adds fixed sin-cos positions of the grid, encodes the
kept tokens with `TokenEncoder` and predicts every token with `TokenDecoder`.

The defaults are mmjax's MAE recipe (a cls token, separable sin-cos positions per grid axis).
The other values of the knobs express VideoMAE as the reference and HF transformers build it:
no cls token, one sinusoid table over the flattened token index (`posemb="sincos_flat"`), HF's
layer-norm eps, no bias in the encoder-to-decoder projection (`mmjax.export.hf_videomae`).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mmjax.config import knob
from mmjax.masking.mask import Mask
from mmjax.models.config import (
    DTYPES,
    REMAT_NAMES,
    AttentionOption,
    dtype_knob,
    remat_knob,
    transformer_config,
)
from mmjax.models.initializers import with_axes, xavier_uniform, zeros
from mmjax.models.token_mae import TokenDecoder, TokenEncoder
from mmjax.ops.posemb import sincos_2d
from mmjax.ops.tubelets import sincos_3d, sincos_flat

POSEMBS = ("sincos", "sincos_flat")


@dataclasses.dataclass(frozen=True)
class GridEncoderConfig(AttentionOption):
    """The `model` section: encoder size and runtime options (the patch size is the modality's)."""

    width: int = knob(768, "encoder token width")
    depth: int = knob(12, "encoder blocks")
    heads: int = knob(12, "encoder attention heads; width must be a multiple")
    mlp_dim: int = knob(3072, "hidden size of the encoder's MLPs")
    dtype: str = dtype_knob()
    remat: str = remat_knob()
    cls_token: bool = knob(True, "prepend a learned cls token (VideoMAE has none)")
    posemb: str = knob(
        "sincos", "fixed positions: sin-cos per grid axis, or VideoMAE's over the flat index", choices=POSEMBS
    )
    layer_norm_eps: float = knob(1e-6, "eps of every encoder and decoder-block LayerNorm", low=0, low_open=True)
    qkv_bias: bool = knob(True, "biases in the attention projections, encoder and decoder")
    final_norm: bool = knob(True, "a LayerNorm after the last encoder block")

    def __post_init__(self):
        check_size("model", self.width, self.depth, self.heads, self.mlp_dim)
        check_posemb("model", self.posemb)
        if self.dtype not in DTYPES:
            raise ValueError(f"model.dtype must be one of {DTYPES}, got {self.dtype!r}")
        self.check_attention_impl("model")
        if self.remat not in REMAT_NAMES:
            raise ValueError(f"model.remat must be one of {REMAT_NAMES}, got {self.remat!r}")


@dataclasses.dataclass(frozen=True)
class GridDecoderConfig:
    """The `decoder` section."""

    width: int = knob(384, "decoder token width")
    depth: int = knob(4, "decoder blocks")
    heads: int = knob(6, "decoder attention heads; width must be a multiple")
    mlp_dim: int = knob(1536, "hidden size of the decoder's MLPs")
    posemb: str = knob("sincos", "as model.posemb, for the decoder's positions", choices=POSEMBS)
    embed_bias: bool = knob(True, "a bias in the encoder-to-decoder projection (VideoMAE has none)")
    norm_eps: float | None = knob(
        None, "eps of the LayerNorm before the prediction; None = model.layer_norm_eps", low=0, low_open=True
    )

    def __post_init__(self):
        check_size("decoder", self.width, self.depth, self.heads, self.mlp_dim)
        check_posemb("decoder", self.posemb)


def check_size(where: str, width: int, depth: int, heads: int, mlp_dim: int) -> None:
    """Errors naming `where.width` etc. for a transformer size that cannot work."""
    if width <= 0 or heads <= 0 or width % heads:
        raise ValueError(f"{where}.width={width} must be a positive multiple of {where}.heads={heads}")
    if width % 2:
        raise ValueError(f"{where}.width={width} must be even for sin-cos position embeddings")
    if depth < 0 or mlp_dim <= 0:
        raise ValueError(f"{where}.depth={depth} must be >= 0 and {where}.mlp_dim={mlp_dim} > 0")


def check_posemb(where: str, posemb: str) -> None:
    """Error naming `where.posemb` for an unknown position embedding."""
    if posemb not in POSEMBS:
        raise ValueError(f"{where}.posemb must be one of {POSEMBS}, got {posemb!r}")


def grid_positions(grid: tuple[int, ...], dim: int, posemb: str = "sincos") -> jax.Array:
    """Fixed positions `[N, dim]` of a 2-D `(rows, cols)` or 3-D `(T, H, W)` grid, flattened row-major.

    `sincos`: separable sin-cos per axis; `sincos_flat`: VideoMAE's table over the flat index.
    """
    check_posemb("posemb", posemb)
    if posemb == "sincos_flat":
        return jnp.asarray(sincos_flat(int(np.prod(grid)), dim))
    if len(grid) == 2:
        return jnp.asarray(sincos_2d(grid, dim))
    if len(grid) == 3:
        return jnp.asarray(sincos_3d(grid, dim))
    raise ValueError(f"token grid must have 2 or 3 axes, got {grid}")


def patch_embedding(enc: GridEncoderConfig, name: str | None = None) -> nn.Dense:
    """The linear patch embedding `[B, N, P] -> [B, N, model.width]` of an encoder of this size."""
    return nn.Dense(
        enc.width,
        dtype=jnp.dtype(enc.dtype),
        param_dtype=jnp.float32,
        kernel_init=with_axes(xavier_uniform(), (None, "embed")),
        bias_init=with_axes(zeros, ("embed",)),
        name=name,
    )


def token_encoder(enc: GridEncoderConfig, name: str | None = None) -> TokenEncoder:
    """The `TokenEncoder` that `model` describes."""
    return TokenEncoder(
        width=enc.width,
        transformer=transformer_config(enc),
        cls_token=enc.cls_token,
        final_norm=enc.final_norm,
        name=name,
    )


class GridPatchEncoder(nn.Module):
    """An encoder alone over patch vectors of a token grid: embed, add fixed positions, `TokenEncoder`.

    The same parts as `GridMAEModel`'s encoder (`patch_embed`, `token_encoder`), for methods
    without an MAE decoder (the grid I-JEPA of `mmjax.methods.grid_jepa`).
    """

    config: GridEncoderConfig
    grid: tuple[int, ...]

    @nn.compact
    def __call__(
        self, patches: jax.Array, ids_keep: jax.Array | None = None, key_lengths: jax.Array | None = None
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """`[B, N, P]` (+ kept ids `[B, K]`, real lengths `[B]`) -> `([B, (1 +) K, D], out)`, a cls row first if any.

        Returns `(tokens, out)` as `ViTEncoder` does; `out["encoded"]` is the tokens.
        """
        num_tokens = int(np.prod(self.grid))
        if patches.shape[1] != num_tokens:
            raise ValueError(f"expected {num_tokens} patches for grid {self.grid}, got {patches.shape[1]}")
        tokens = patch_embedding(self.config, "patch_embed")(patches).astype(jnp.float32)
        tokens = tokens + grid_positions(self.grid, self.config.width, self.config.posemb)
        return token_encoder(self.config, "token_encoder")(tokens, ids_keep, key_lengths)


class GridMAEModel(nn.Module):
    """Patch embedding + fixed positions + `TokenEncoder` (kept tokens) + `TokenDecoder`.

    Attributes:
      encoder: encoder size; decoder: decoder size.
      grid: the token grid, `N = prod(grid)`, flattened row-major (time first).
      out_dim: prediction size per token (the patch vector size P).
    """

    encoder: GridEncoderConfig
    decoder: GridDecoderConfig
    grid: tuple[int, ...]
    out_dim: int

    def setup(self):
        self.patch_embed = patch_embedding(self.encoder)
        self.token_encoder = token_encoder(self.encoder)
        enc, dec = self.encoder, self.decoder
        self.token_decoder = TokenDecoder(
            width=dec.width,
            out_dim=self.out_dim,
            transformer=transformer_config(enc, dec),
            cls_token=enc.cls_token,
            embed_bias=dec.embed_bias,
            norm_eps=dec.norm_eps,
        )

    def encode(self, patches: jax.Array, ids_keep: jax.Array | None = None) -> jax.Array:
        """`[B, N, P]` patch vectors (+ int `[B, K]` kept ids) -> `[B, (1 +) K, D]`, a cls row first if any.

        K = N without `ids_keep`.
        """
        n = patches.shape[1]
        if n != self.num_tokens:
            raise ValueError(f"expected {self.num_tokens} patches for grid {self.grid}, got {n}")
        tokens = self.patch_embed(patches).astype(jnp.float32) + grid_positions(
            self.grid, self.encoder.width, self.encoder.posemb
        )
        return self.token_encoder(tokens, ids_keep)[0]

    def __call__(self, patches: jax.Array, mask: Mask) -> jax.Array:
        """Predictions `[B, N, out_dim]` of every token from the kept ones (`mask.ids_keep`)."""
        latent = self.encode(patches, mask.ids_keep)
        return self.token_decoder(
            latent, mask.ids_restore, grid_positions(self.grid, self.decoder.width, self.decoder.posemb)
        )

    @property
    def num_tokens(self) -> int:
        return int(np.prod(self.grid))
