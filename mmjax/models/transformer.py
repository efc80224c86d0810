"""Pre-LayerNorm transformer blocks (ViT / MAE), with BEiT's options: layer scale, a relative
position bias per block, and a key projection without bias."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mmjax.models.config import TransformerConfig
from mmjax.models.initializers import constant, ones, with_axes, xavier_uniform, xavier_uniform_fused, zeros
from mmjax.ops.attention import attention


def layer_norm(eps: float, dtype, name: str) -> nn.LayerNorm:
    """LayerNorm with float32 parameters and statistics, output in `dtype`."""
    return nn.LayerNorm(
        epsilon=eps,
        dtype=dtype,
        param_dtype=jnp.float32,
        scale_init=with_axes(ones, ("embed",)),
        bias_init=with_axes(zeros, ("embed",)),
        name=name,
    )


def first_query_attention(
    q: jax.Array,
    k: jax.Array,
    key_lengths: jax.Array | None = None,
    bias: jax.Array | None = None,
    mask: jax.Array | None = None,
) -> jax.Array:
    """Softmax attention weights of the first query (the cls token) over the keys, averaged over heads.

    Args:
      q: `[B, L, H, Dh]`; k: `[B, M, H, Dh]`; key_lengths: int `[B]`, keys at or past it ignored;
      bias: `[B or 1, H or 1, L, M]` added to the logits (a relative position bias);
      mask: bool `[B or 1, L, M]` or `[B or 1, H or 1, L, M]`, True = may attend (only its first row is read).

    Returns:
      float32 `[B, M]`, each row summing to 1.
    """
    scale = q.shape[-1] ** -0.5
    logits = jnp.einsum("bhd,bmhd->bhm", q[:, 0].astype(jnp.float32) * scale, k.astype(jnp.float32))
    if bias is not None:
        logits = logits + bias[:, :, 0].astype(jnp.float32)
    if key_lengths is not None:
        valid = jnp.arange(k.shape[1])[None, None, :] < key_lengths[:, None, None]
        logits = jnp.where(valid, logits, -jnp.inf)
    if mask is not None:
        first = mask[:, None, 0] if mask.ndim == 3 else mask[:, :, 0]
        logits = jnp.where(first, logits, -jnp.inf)
    return jnp.mean(jax.nn.softmax(logits, axis=-1), axis=1)


def last_block_cls_attention(intermediates: dict, depth: int) -> jax.Array:
    """The last block's sown `cls_attention` `[B, M]` from a `TransformerStack`'s intermediates (either layout)."""
    if "layers" in intermediates:
        return intermediates["layers"]["attn"]["cls_attention"][0][-1]
    return intermediates[f"block_{depth - 1}"]["attn"]["cls_attention"][0]


class RelativePositionBias(nn.Module):
    """BEiT's learned relative position bias: a table `[entries, H]` (zeros at init, as BEiT) read
    through an index from `mmjax.ops.relative_position`."""

    entries: int
    heads: int

    @nn.compact
    def __call__(self, index: jax.Array) -> jax.Array:
        """int `[B or 1, L, M]` table rows -> float32 bias `[B or 1, H, L, M]`."""
        table = self.param("table", with_axes(zeros, (None, "heads")), (self.entries, self.heads), jnp.float32)
        return jnp.moveaxis(table[index], -1, 1)


class MultiHeadAttention(nn.Module):
    """Attention with separate q/k/v projections, routed through `mmjax.ops.attention`.

    Self-attention by default; given `context`, cross-attention: queries from `x`, keys and
    values from `context` (Muse's conditioning in `mmjax.models.maskgit`). When the
    `intermediates` collection is mutable, it also sows `cls_attention` `[B, L]`: the first
    query's attention weights over the keys, averaged over heads (AttMask reads the last
    block's); otherwise nothing extra is computed. It reads `heads`, `qkv_bias`, `key_bias`, `dtype`
    and `attention_impl` of its `TransformerConfig`: `key_bias=False` drops the key projection's
    bias alone (BEiT: q and v have one); it cannot change the attention weights.
    """

    config: TransformerConfig

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        key_lengths: jax.Array | None = None,
        context: jax.Array | None = None,
        bias: jax.Array | None = None,
        mask: jax.Array | None = None,
    ) -> jax.Array:
        """`[B, L, D] -> [B, L, D]`; `key_lengths` `[B]` masks padded keys.

        `context` `[B, M, C]`: the keys and values come from it (`key_lengths` then counts
        its rows); a row whose key length is 0 sees no key and gets zeros. `bias`
        `[B or 1, H, L, M]` is added to the attention logits (`mmjax.ops.attention`).
        `mask` bool `[B or 1, L, M]` or `[B or 1, H, L, M]`, True = may attend (e.g.
        `mmjax.ops.causal_mask`); a query row with no allowed key gets zeros.
        """
        cfg = self.config
        dim = x.shape[-1]
        head_dim = dim // cfg.heads
        project = functools.partial(
            nn.DenseGeneral,
            features=(cfg.heads, head_dim),
            use_bias=cfg.qkv_bias,
            dtype=cfg.compute_dtype,
            param_dtype=jnp.float32,
            kernel_init=with_axes(xavier_uniform_fused(3), ("embed", "heads", "kv")),
            bias_init=with_axes(zeros, ("heads", "kv")),
        )
        source = x if context is None else context
        key = project(name="key", use_bias=cfg.qkv_bias and cfg.key_bias)
        q, k, v = project(name="query")(x), key(source), project(name="value")(source)
        if self.is_mutable_collection("intermediates"):
            self.sow("intermediates", "cls_attention", first_query_attention(q, k, key_lengths, bias, mask))
        out = attention(q, k, v, key_lengths=key_lengths, mask=mask, bias=bias, impl=cfg.attention_impl)
        return nn.DenseGeneral(
            dim,
            axis=(-2, -1),
            dtype=cfg.compute_dtype,
            param_dtype=jnp.float32,
            kernel_init=with_axes(xavier_uniform(), ("heads", "kv", "embed")),
            bias_init=with_axes(zeros, ("embed",)),
            name="out",
        )(out)


class MLP(nn.Module):
    """Two layers with exact (erf) GELU between, as torch `nn.GELU()` and HF `gelu`."""

    hidden: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        dim = x.shape[-1]
        dense = functools.partial(nn.Dense, dtype=self.dtype, param_dtype=jnp.float32)
        x = dense(
            self.hidden,
            kernel_init=with_axes(xavier_uniform(), ("embed", "mlp")),
            bias_init=with_axes(zeros, ("mlp",)),
            name="fc1",
        )(x)
        x = nn.gelu(x, approximate=False)
        return dense(
            dim,
            kernel_init=with_axes(xavier_uniform(), ("mlp", "embed")),
            bias_init=with_axes(zeros, ("embed",)),
            name="fc2",
        )(x)


class EncoderBlock(nn.Module):
    """`x + attn(norm1(x))`, then `x + mlp(norm2(x))`.

    Its `TransformerConfig` gives heads, MLP size, eps, dtype, attention and BEiT's options:
    `layer_scale > 0` multiplies each branch by a learned per-channel `gamma_1` / `gamma_2` `[D]`
    initialised to it; `rel_pos_entries > 0` gives the block its own relative position table
    (`rel_pos_bias/table` `[entries, H]`), read through `rel_index`. `drop_path > 0` (this block's
    rate; the config's `drop_path` is the stack's) is stochastic depth (Huang et al. 2016, timm's
    `DropPath`): when the module is applied with a `drop_path` rng, each example's branch output is zeroed with that
    probability and the kept ones are scaled by `1 / (1 - drop_path)`; without the rng, nothing drops.
    """

    config: TransformerConfig
    drop_path: float = 0.0

    def _scaled(self, y: jax.Array, name: str) -> jax.Array:
        if self.config.layer_scale:
            init = with_axes(constant(self.config.layer_scale), ("embed",))
            gamma = self.param(name, init, (y.shape[-1],), jnp.float32)
            y = y * gamma.astype(y.dtype)
        if not self.drop_path or not self.has_rng(DROP_PATH_RNG):
            return y
        keep = 1.0 - self.drop_path
        kept = jax.random.bernoulli(self.make_rng(DROP_PATH_RNG), keep, (y.shape[0],) + (1,) * (y.ndim - 1))
        return jnp.where(kept, y / keep, 0.0).astype(y.dtype)

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        key_lengths: jax.Array | None = None,
        bias: jax.Array | None = None,
        rel_index: jax.Array | None = None,
        mask: jax.Array | None = None,
    ) -> jax.Array:
        """`[B, L, D] -> [B, L, D]`; the residual stream stays float32.

        `bias` `[B or 1, H, L, L]` (a shared relative position bias) is added to every head's
        logits; `rel_index` int `[B or 1, L, L]` is needed when the block has its own table.
        `mask` bool `[B or 1, L, L]` or `[B or 1, H, L, L]`, True = may attend.
        """
        cfg = self.config
        if cfg.rel_pos_entries:
            if rel_index is None:
                raise ValueError("a block with its own relative position table needs rel_index [B or 1, L, L]")
            own = RelativePositionBias(entries=cfg.rel_pos_entries, heads=cfg.heads, name="rel_pos_bias")(rel_index)
            bias = own if bias is None else bias + own
        y = layer_norm(cfg.layer_norm_eps, cfg.compute_dtype, "norm1")(x)
        attn = MultiHeadAttention(config=cfg, name="attn")
        x = x + self._scaled(attn(y, key_lengths, bias=bias, mask=mask), "gamma_1").astype(x.dtype)
        y = layer_norm(cfg.layer_norm_eps, cfg.compute_dtype, "norm2")(x)
        y = MLP(hidden=cfg.mlp_dim, dtype=cfg.compute_dtype, name="mlp")(y)
        return x + self._scaled(y, "gamma_2").astype(x.dtype)


# The rng stream that turns stochastic depth on (`EncoderBlock.drop_path`): `apply(..., rngs={DROP_PATH_RNG: key})`.
DROP_PATH_RNG = "drop_path"

# model.remat -> what the backward pass keeps (None: keep nothing, recompute each block).
REMAT_POLICIES = {
    "none": None,
    "full": None,
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


class _ScannedBlock(EncoderBlock):
    """An `EncoderBlock` with the `(carry, out)` signature `nn.scan` wants."""

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        key_lengths: jax.Array | None = None,
        bias: jax.Array | None = None,
        rel_index: jax.Array | None = None,
        mask: jax.Array | None = None,
    ) -> tuple[jax.Array, None]:
        return super().__call__(x, key_lengths, bias, rel_index, mask), None


class TransformerStack(nn.Module):
    """`config.depth` encoder blocks, all options from one keyword-built `TransformerConfig`.

    Unrolled (`scan=False`), parameters are `block_{i}/...`. With `scan=True` one block is
    scanned over the layers and parameters are `layers/...` with a leading `[depth]` axis
    (logical axis `layers`); `stack_layers` / `unstack_layers` convert between the two.
    `remat` in `REMAT_POLICIES` trades compute for activation memory: `full` recomputes each
    block in the backward pass, `dots` keeps only matmul outputs; the values do not change.
    `key_bias`, `layer_scale` and `rel_pos_entries` are `EncoderBlock`'s BEiT options, for every block.
    `TransformerStack(config=TransformerConfig(depth=..., heads=..., mlp_dim=...), name=...)`.
    It returns `(x, out)`: `out["block{i}"]` is block i's output (1-based, unrolled stacks; a
    scanned stack keeps none), as big_vision's `out` dict.
    `drop_path` is the last block's stochastic-depth rate; block i of L drops at `drop_path * i / (L - 1)`
    (timm's `linspace(0, drop_path, L)`: the first block never; unrolled only).
    """

    config: TransformerConfig

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        key_lengths: jax.Array | None = None,
        bias: jax.Array | None = None,
        rel_index: jax.Array | None = None,
        mask: jax.Array | None = None,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """`[B, L, D] -> ([B, L, D], out)`; `key_lengths` `[B]` masks padded keys in every block.

        `out["block{i}"]` `[B, L, D]`: the output of block i (1-based), unrolled stacks only.

        `bias` `[B or 1, H, L, L]` is added to every block's attention logits (BEiT's shared
        relative position bias); `rel_index` int `[B or 1, L, L]` reads per-block tables.
        `mask` bool `[B or 1, L, L]` or `[B or 1, H, L, L]` (True = may attend; e.g.
        `mmjax.ops.build_attention_mask`) restricts every block's attention.
        """
        cfg = self.config
        if cfg.remat not in REMAT_POLICIES:
            raise ValueError(f"model.remat={cfg.remat!r}: expected one of {sorted(REMAT_POLICIES)}")
        block = _ScannedBlock if cfg.scan else EncoderBlock
        if cfg.remat != "none":
            block = nn.remat(block, policy=REMAT_POLICIES[cfg.remat], prevent_cse=not cfg.scan)
        if cfg.drop_path and cfg.scan:
            raise ValueError(
                f"drop path {cfg.drop_path} with model.scan=True: the per-block rates need unrolled blocks"
            )
        if cfg.scan:
            scanned = nn.scan(
                block,
                variable_axes={"params": 0, "intermediates": 0},
                split_rngs={"params": True},
                in_axes=(nn.broadcast, nn.broadcast, nn.broadcast, nn.broadcast),
                length=cfg.depth,
                metadata_params={nn.PARTITION_NAME: "layers"},
            )
            x, _ = scanned(config=cfg, name="layers")(x, key_lengths, bias, rel_index, mask)
            return x, {}
        out = {}
        rates = np.linspace(0.0, cfg.drop_path, cfg.depth)
        for i in range(cfg.depth):
            x = block(config=cfg, drop_path=float(rates[i]), name=f"block_{i}")(x, key_lengths, bias, rel_index, mask)
            out[f"block{i + 1}"] = x
        return x, out


def stack_layers(blocks: dict, depth: int) -> dict:
    """Unrolled stack params `{"block_0": p0, ...}` -> scanned `{"layers": p}` with leaves `[depth, ...]`."""
    missing = [f"block_{i}" for i in range(depth) if f"block_{i}" not in blocks]
    if missing:
        raise ValueError(f"stack_layers: depth={depth} but {missing} are missing; got {sorted(blocks)}")
    return {"layers": jax.tree.map(lambda *xs: jnp.stack(xs), *(blocks[f"block_{i}"] for i in range(depth)))}


def unstack_layers(blocks: dict) -> dict:
    """Scanned stack params `{"layers": p}` (leaves `[depth, ...]`) -> `{"block_0": p0, ...}`."""
    if set(blocks) != {"layers"}:
        raise ValueError(f"unstack_layers expects {{'layers': ...}}, got keys {sorted(blocks)}")
    depth = jax.tree.leaves(blocks["layers"])[0].shape[0]
    return {f"block_{i}": jax.tree.map(lambda x, i=i: x[i], blocks["layers"]) for i in range(depth)}
