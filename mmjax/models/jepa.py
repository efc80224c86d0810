"""I-JEPA (Assran et al. 2023): a context encoder, an EMA target encoder and a narrow predictor."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.config import knob
from mmjax.models.config import TransformerConfig, ViTConfig, _check_heads, transformer_config
from mmjax.models.grid_mae import GridEncoderConfig, GridPatchEncoder, grid_positions
from mmjax.models.initializers import normal, with_axes, xavier_uniform, zeros
from mmjax.models.transformer import TransformerStack, layer_norm
from mmjax.models.vit import ViTEncoder


@dataclasses.dataclass(frozen=True)
class PredictorConfig:
    """`predictor`: the narrow predictor (I-JEPA ViT-H/14: 384 wide, 12 blocks, 16 heads)."""

    width: int = knob(384, "predictor width (its own embedding size)", low=1)
    depth: int = knob(12, "predictor transformer blocks", low=0)
    heads: int = knob(16, "attention heads; width must be a multiple", low=1)
    mlp_dim: int = knob(1536, "hidden size of the predictor's MLPs", low=1)
    position_noise: float = knob(
        0.0, "StoP (FlexPredict): std of the Gaussian noise on the masked tokens' positions; 0 = I-JEPA", low=0
    )

    def __post_init__(self):
        _check_heads("predictor", self.width, self.heads, "sincos2d")
        if self.depth < 0 or self.mlp_dim <= 0:
            raise ValueError(
                f"predictor.depth and predictor.mlp_dim must be positive, got {self.depth}, {self.mlp_dim}"
            )


class JEPAPredictor(nn.Module):
    """Predict the features of target blocks from the context tokens and the targets' positions.

    Each target block is predicted separately (folded into the batch, as the reference
    repeats the context per block): the sequence is `[context tokens, one mask token per
    target position]`, each mask token carrying its position's sin-cos embedding. Padded
    context and target entries are moved behind the real ones and ignored as keys.

    `position_noise` > 0 is StoP (Bar et al. 2024, "Stochastic positional embeddings improve
    masked image modeling", the FlexPredict system): each mask token becomes
    `B (sigma * n + m) + psi`, with `n ~ N(0, I)` drawn per target position in the encoder's
    width, `m` a learned token in that width (`stop_mask_token`) and `B` the same linear map
    (`embed`) that projects the context tokens. The position is then Gaussian around `psi` with
    the learned covariance `sigma^2 B B^T`, and tying it to `B` keeps the model from shrinking the
    noise away without also shrinking the context.
    """

    grid: tuple[int, ...]
    config: PredictorConfig
    out_dim: int
    transformer: TransformerConfig  # the blocks: the predictor's size, the encoder's runtime options

    @nn.compact
    def __call__(
        self,
        context: jax.Array,
        context_ids: jax.Array,
        context_len: jax.Array,
        target_ids: jax.Array,
        target_len: jax.Array,
        noise_rng: jax.Array | None = None,
    ) -> jax.Array:
        """Predict every target position.

        Args:
          context: `[B, Nc, D_enc]` context-encoder output (no cls row); rows at or past
            `context_len` are padding.
          context_ids: int `[B, Nc]` the grid position of each context row.
          context_len: int scalar, the number of real context rows (the same for the batch).
          target_ids: int `[B, M, T]` grid positions of the M target blocks.
          target_len: int scalar, the number of real positions per block (the first ones).
          noise_rng: draws StoP's position noise when `position_noise` > 0 (None: no noise,
            as at init).

        Returns:
          float32 `[B, M, T, out_dim]`: one row per target position (rows at or past
          `target_len` are padding).
        """
        cfg, stack = self.config, self.transformer
        dtype = stack.compute_dtype
        batch, num_context, _ = context.shape
        _, num_targets, target_size = target_ids.shape
        table = grid_positions(self.grid, cfg.width)  # [N, Dp], fixed as in the reference (2-D or 3-D grid)
        embed = nn.Dense(
            cfg.width,
            dtype=dtype,
            param_dtype=jnp.float32,
            kernel_init=with_axes(xavier_uniform(), (None, "embed")),
            bias_init=with_axes(zeros, ("embed",)),
            name="embed",
        )
        x = embed(context).astype(jnp.float32) + table[context_ids]
        if cfg.position_noise:
            width = context.shape[-1]
            token = self.param("stop_mask_token", with_axes(normal(0.02), (None, None, None, None)), (1, 1, 1, width))
            noise = jnp.zeros((batch, num_targets, target_size, width), jnp.float32)
            if noise_rng is not None:
                noise = cfg.position_noise * jax.random.normal(noise_rng, noise.shape)
            queries = embed(noise + token).astype(jnp.float32) + table[target_ids]  # [B, M, T, Dp]
        else:
            token = self.param("mask_token", with_axes(normal(0.02), (None, None, "embed")), (1, 1, cfg.width))
            queries = token[None] + table[target_ids]  # [B, M, T, Dp]
        x = jnp.repeat(x, num_targets, axis=0)  # [B * M, Nc, Dp], example-major like the queries
        queries = queries.reshape(batch * num_targets, target_size, cfg.width)
        seq = jnp.concatenate([x, queries], axis=1)
        # Real context rows, then real target rows, then padding (ignored as keys).
        j = jnp.arange(num_context + target_size)
        source = jnp.where(
            j < context_len, j, jnp.where(j < context_len + target_len, num_context + j - context_len, j)
        )
        seq = jnp.take(seq, source, axis=1)
        lengths = jnp.full((batch * num_targets,), context_len + target_len, jnp.int32)
        seq, _ = TransformerStack(config=stack, name="blocks")(seq, lengths)
        seq = layer_norm(stack.layer_norm_eps, dtype, "norm")(seq)
        out = jnp.take(seq, context_len + jnp.arange(target_size), axis=1)  # the target rows only
        out = nn.Dense(
            self.out_dim,
            dtype=dtype,
            param_dtype=jnp.float32,
            kernel_init=with_axes(xavier_uniform(), ("embed", None)),
            bias_init=with_axes(zeros, (None,)),
            name="proj",
        )(out)
        return out.astype(jnp.float32).reshape(batch, num_targets, target_size, self.out_dim)


class JEPAModel(nn.Module):
    """`context_encoder` and `target_encoder` (the same encoder, no cls token: I-JEPA has none) and the `predictor`.

    Without `grid` the encoders are ViTs over images `[B, H, W, C]` (`config` a `ViTConfig`);
    with `grid` they are `GridPatchEncoder`s over patch vectors `[B, N, P]` of that 2-D or 3-D
    token grid (`config` a `GridEncoderConfig`: spectrogram patches, video tubelets). Either
    way the methods below take "inputs" of that form.
    """

    config: ViTConfig | GridEncoderConfig
    predictor_config: PredictorConfig
    grid: tuple[int, ...] | None = None

    def setup(self):
        cfg = self.config
        if self.grid is None:
            self.context_encoder = ViTEncoder(cfg, cls_token=False)
            self.target_encoder = ViTEncoder(cfg, cls_token=False)
        else:
            self.context_encoder = GridPatchEncoder(cfg, self.grid)
            self.target_encoder = GridPatchEncoder(cfg, self.grid)
        p = self.predictor_config
        self.predictor = JEPAPredictor(
            grid=cfg.grid if self.grid is None else self.grid,
            config=p,
            out_dim=cfg.width,
            transformer=transformer_config(cfg, p, qkv_bias=True),
        )

    def encode_context(self, inputs: jax.Array, context_ids: jax.Array, context_len: jax.Array) -> jax.Array:
        """Inputs (`[B, H, W, C]` or `[B, N, P]`), padded context ids `[B, Nc]` -> `[B, Nc, D]` (padding: junk)."""
        lengths = jnp.full((inputs.shape[0],), context_len, jnp.int32)  # the real context
        return self.context_encoder(inputs, ids_keep=context_ids, key_lengths=lengths)[0]

    def encode_target(self, inputs: jax.Array) -> jax.Array:
        """Whole inputs through the target encoder: `[B, H, W, C]` or `[B, N, P]` -> `[B, N, D]`."""
        return self.target_encoder(inputs)[0]

    def predict(
        self,
        context: jax.Array,
        context_ids: jax.Array,
        context_len: jax.Array,
        target_ids: jax.Array,
        target_len: jax.Array,
        noise_rng: jax.Array | None = None,
    ) -> jax.Array:
        """`JEPAPredictor`: `[B, Nc, D]` context -> `[B, M, T, D]` target predictions."""
        return self.predictor(context, context_ids, context_len, target_ids, target_len, noise_rng)

    def features(self, inputs: jax.Array) -> jax.Array:
        """The target encoder on whole inputs, what I-JEPA evaluates: `-> [B, N, D]`."""
        return self.target_encoder(inputs)[0]

    def __call__(self, inputs, context_ids, context_len, target_ids, target_len) -> tuple[jax.Array, jax.Array]:
        """Every submodule once (for `init`): predictions `[B, M, T, D]` and targets `[B, N, D]`."""
        context = self.encode_context(inputs, context_ids, context_len)
        return self.predict(context, context_ids, context_len, target_ids, target_len), self.encode_target(inputs)
