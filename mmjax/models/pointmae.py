"""Point-MAE (Pang et al. 2022) modules: mini-PointNet group embedding and the masked autoencoder."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.models.config import TransformerConfig
from mmjax.models.initializers import with_axes, xavier_uniform, zeros
from mmjax.models.token_mae import TokenDecoder, TokenEncoder


def _dense(features: int, name: str, axes=(None, "embed")) -> nn.Dense:
    return nn.Dense(
        features,
        kernel_init=with_axes(xavier_uniform(), axes),
        bias_init=with_axes(zeros, (axes[1],)),
        name=name,
    )


class MiniPointNet(nn.Module):
    """Point-MAE's group encoder: shared point MLP, max-pool, concat the pooled feature to every point, MLP, max-pool.

    Point-MAE uses BatchNorm in its point MLPs; here it is LayerNorm, so the model has no
    batch statistics to carry (the protocol's params are one pytree). Every op is per point
    or a max over points, so the output is invariant to the order of points in a group.

    Attributes:
      width: output size D.
      hidden: first MLP sizes (Point-MAE: 128, 256; the second MLP is 512 -> D).
    """

    width: int
    hidden: tuple[int, int] = (128, 256)

    @nn.compact
    def __call__(self, groups: jax.Array) -> jax.Array:
        """`[B, G, K, 3]` center-relative points -> `[B, G, D]` group embeddings."""
        first, second = self.hidden
        x = _dense(first, "mlp1_0", (None, "mlp"))(groups)
        x = nn.relu(nn.LayerNorm(name="norm1")(x))
        x = _dense(second, "mlp1_1", ("mlp", None))(x)
        pooled = jnp.max(x, axis=-2, keepdims=True)
        x = jnp.concatenate([jnp.broadcast_to(pooled, x.shape), x], axis=-1)
        x = _dense(2 * second, "mlp2_0", (None, "mlp"))(x)
        x = nn.relu(nn.LayerNorm(name="norm2")(x))
        x = _dense(self.width, "mlp2_1", ("mlp", "embed"))(x)
        return jnp.max(x, axis=-2)


class CenterEmbedding(nn.Module):
    """Position embedding of group centers: `Linear(3, 128) -> GELU -> Linear(128, D)` as Point-MAE."""

    width: int

    @nn.compact
    def __call__(self, centers: jax.Array) -> jax.Array:
        """`[B, G, 3]` -> `[B, G, D]`."""
        x = nn.gelu(_dense(128, "fc1", (None, "mlp"))(centers))
        return _dense(self.width, "fc2", ("mlp", "embed"))(x)


class PointMAEModel(nn.Module):
    """Encoder on visible groups (+ center embeddings), decoder predicting each group's K points.

    Position embeddings are added once at the input of the encoder and of the decoder
    (Point-MAE adds them before every block).

    Attributes:
      group_size: K points per group.
      width, transformer: encoder width and blocks.
      decoder_width, decoder_transformer: decoder width and blocks.
      pointnet_hidden: the mini-PointNet's first MLP sizes.
    """

    group_size: int
    width: int
    transformer: TransformerConfig
    decoder_width: int
    decoder_transformer: TransformerConfig
    pointnet_hidden: tuple[int, int] = (128, 256)

    def setup(self):
        self.group_embed = MiniPointNet(self.width, tuple(self.pointnet_hidden))
        self.encoder_pos = CenterEmbedding(self.width)
        self.encoder = TokenEncoder(width=self.width, transformer=self.transformer, cls_token=False)
        self.decoder_pos = CenterEmbedding(self.decoder_width)
        self.decoder = TokenDecoder(
            width=self.decoder_width,
            out_dim=3 * self.group_size,
            transformer=self.decoder_transformer,
            cls_token=False,
        )

    def encode(self, groups: jax.Array, centers: jax.Array, ids_keep: jax.Array | None = None) -> jax.Array:
        """`[B, G, K, 3]` groups, `[B, G, 3]` centers, optional int `[B, V]` kept ids -> `[B, V or G, D]`."""
        tokens = self.group_embed(groups) + self.encoder_pos(centers)
        return self.encoder(tokens, ids_keep)[0]

    def __call__(self, groups: jax.Array, centers: jax.Array, ids_keep: jax.Array, ids_restore: jax.Array) -> jax.Array:
        """Predicted center-relative points of every group, `[B, G, K, 3]`."""
        latent = self.encode(groups, centers, ids_keep)
        pred = self.decoder(latent, ids_restore, self.decoder_pos(centers))
        return pred.reshape(*groups.shape)
