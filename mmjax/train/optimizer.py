"""AdamW with warmup + cosine, gradient clipping, weight decay chosen by parameter-path rules, and
layer-wise learning-rate decay."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from mmjax.config import dataclass_from_config
from mmjax.train.defaults import NO_DECAY_DEFAULT, TrainSection


def train_section(config: Any) -> TrainSection:
    """A `train` section (ConfigDict, mapping or `TrainSection`) checked, the fields it lacks at their defaults."""
    return config if isinstance(config, TrainSection) else dataclass_from_config(TrainSection, config, "train")


def path_name(path: tuple) -> str:
    """A key path as `encoder/blocks/block_0/mlp/fc1/kernel`."""
    return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def decay_mask(params: Any, no_decay: Sequence[str] = NO_DECAY_DEFAULT) -> Any:
    """Boolean tree: True where weight decay applies."""
    patterns = [re.compile(p) for p in no_decay]
    return jax.tree_util.tree_map_with_path(
        lambda path, _: not any(p.fullmatch(path_name(path)) for p in patterns), params
    )


def learning_rate_schedule(config: Any) -> optax.Schedule:
    """Linear warmup to `train.lr`, then half-cycle cosine to `train.min_lr` at `train.steps`."""
    config = train_section(config)
    warmup = min(config.warmup_steps, config.steps)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=config.lr,
        warmup_steps=warmup,
        decay_steps=max(config.steps, warmup + 1),
        end_value=config.min_lr,
    )


def weight_decay_schedule(config: Any) -> float | optax.Schedule:
    """`train.weight_decay`, constant; or a cosine to `train.weight_decay_end` when that is set.

    The cosine runs over `train.steps` (I-JEPA: 0.04 -> 0.4):
    `end + (start - end) * (1 + cos(pi * step / steps)) / 2`.
    """
    config = train_section(config)
    end = config.weight_decay_end
    if end is None:
        return config.weight_decay
    start, steps = float(config.weight_decay), max(int(config.steps), 1)

    def schedule(step):
        progress = jnp.minimum(jnp.asarray(step, jnp.float32) / steps, 1.0)
        return end + (start - end) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))

    return schedule


_BLOCK = re.compile(r"(?:^|/)(?:blocks/)?block_(\d+)(?:/|$)")  # a ViT's `blocks/block_i`, BERT's `block_i`
_SCANNED = re.compile(r"(?:^|/)blocks/layers(?:/|$)")
EMBEDDINGS = ("patch_embed", "cls_token", "pos_embed", "mask_token", "reg_tokens")
EMBEDDINGS += ("word_embeddings", "position_embeddings", "token_type_embeddings", "embed_norm")  # BERT's


def layer_of(name: str, num_layers: int) -> int | None:
    """The layer of a parameter path for layer-wise decay: 0 for the embeddings, `i + 1` for block i,
    `num_layers + 1` for what follows the blocks (final norm, head); None for a scanned stack (one per row)."""
    if (found := _BLOCK.search(name)) is not None:
        return int(found.group(1)) + 1
    if _SCANNED.search(name):
        return None
    if any(part in EMBEDDINGS for part in name.split("/")):
        return 0
    return num_layers + 1


def layer_decay_scales(params: Any, decay: float) -> Any:
    """A tree like `params` of the lr scale of each leaf: `decay ** (L + 1 - layer)` (BEiT's rule, L blocks).

    Blocks are found by path (`blocks/block_<i>/...`, BERT's `block_<i>/...`; a scanned stack `blocks/layers/...` gets a
    scale per row of its leading axis). The head trains at the full rate, the embeddings at
    `decay ** (L + 1)`.
    """
    leaves = [(path_name(path), leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]]
    blocks = {int(m.group(1)) for name, _ in leaves if (m := _BLOCK.search(name))}
    scanned = [leaf.shape[0] for name, leaf in leaves if _SCANNED.search(name)]
    num_layers = max(blocks, default=-1) + 1 if blocks else max(scanned, default=0)

    def scale(path: tuple, leaf: Any) -> Any:
        layer = layer_of(path_name(path), num_layers)
        if layer is None:  # [L, ...]: row i is block i
            rows = decay ** (num_layers - jnp.arange(leaf.shape[0], dtype=jnp.float32))
            return rows.reshape((-1,) + (1,) * (len(leaf.shape) - 1))
        return jnp.asarray(decay ** (num_layers + 1 - layer), jnp.float32)

    return jax.tree_util.tree_map_with_path(scale, params)


def scale_by_layer_decay(decay: float) -> optax.GradientTransformation:
    """Multiply each update by its `layer_decay_scales` (after AdamW: the lr and the decoupled decay alike)."""

    def init(params: Any) -> optax.EmptyState:
        del params
        return optax.EmptyState()

    def update(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        del params
        scales = layer_decay_scales(updates, decay)
        return jax.tree.map(lambda u, s: (u * s).astype(u.dtype), updates, scales), state

    return optax.GradientTransformation(init, update)


def make_optimizer(
    config: Any, params: Any, trainable: Any | None = None
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """The optimizer of `train`: clip by global norm, then AdamW with the decay mask.

    `trainable`, a bool tree like `params`, freezes the False leaves: their updates are
    zero, no Adam moments are kept for them, and their gradients do not count in the clip.
    """
    del params  # the decay mask is computed from the tree optax passes in
    config = train_section(config)
    schedule = learning_rate_schedule(config)
    no_decay = config.no_decay
    parts = []
    if config.grad_clip:
        parts.append(optax.clip_by_global_norm(config.grad_clip))
    parts.append(
        optax.adamw(
            schedule,
            b1=config.b1,
            b2=config.b2,
            weight_decay=weight_decay_schedule(config),
            # A callable: under `trainable`, the frozen leaves arrive as empty `MaskedNode`s.
            mask=lambda p: decay_mask(p, no_decay),
        )
    )
    if config.layer_decay < 1.0:
        parts.append(scale_by_layer_decay(config.layer_decay))
    optimizer = optax.chain(*parts)
    if trainable is not None:
        labels = jax.tree.map(lambda t: "train" if t else "frozen", trainable)
        optimizer = optax.multi_transform({"train": optimizer, "frozen": optax.set_to_zero()}, labels)
    return optimizer, schedule
