"""LoRA (Hu et al. 2022): low-rank adapters on a model's dense projections, with no change to the model.

An adapter of a projection with kernel `W` `[*in, *out]` is `a` `[prod(in), r]` and `b` `[r, prod(out)]`;
the projection computes `W x + (alpha / r) * b(a(x))`. `b` starts at zero, so a fresh adapter leaves the
model as it was. Adapters are a dict keyed by the projection's path in the parameter tree
(`blocks/block_0/attn/query`), beside the model's own (frozen) parameters:

- `lora_sites(apply, *args)` finds the projections (flax `Dense` / `DenseGeneral`) a call reaches and their
  input and output shapes (from shapes alone);
- `init_lora(rng, sites, rank, patterns)` makes adapters for the sites whose path matches a pattern;
- `with_lora(adapters, scale)` is a context in which every adapted projection adds its low-rank path (the
  unmerged form, through `flax.linen.intercept_methods`; what training runs);
- `merge_lora(params, adapters, scale)` folds them into the kernels, `W + scale * a b`: the same function as
  one plain model, for export.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

TARGETS = {  # a ViT block's `attn/query`, `mlp/fc1`; a BERT block's `query`, `fc1`
    "query_value": r"(.*/)?(attn/)?(query|value)",
    "attention": r"(.*/)?(attn/)?(query|key|value|out)",
    "mlp": r"(.*/)?(mlp/)?(fc1|fc2)",
}
"""Named groups of projections for `init_lora`'s `patterns`: the paper's `W_q`, `W_v`; every attention
projection; the MLP layers."""

Sites = dict[str, tuple[tuple[int, ...], tuple[int, ...]]]


def _input_axes(module: nn.Module) -> int:
    axis = getattr(module, "axis", -1)
    return len(axis) if isinstance(axis, Sequence) else 1


def _path(module: nn.Module) -> str:
    return "/".join(module.scope.path)


def lora_sites(apply: Callable[..., Any], *args: Any, **kwargs: Any) -> Sites:
    """`{path: (input dims, output dims)}` of every `Dense` / `DenseGeneral` that `apply(*args)` calls
    (evaluated on shapes only)."""
    found: Sites = {}

    def record(next_fun, call_args, call_kwargs, context):
        module = context.module
        if context.method_name == "__call__" and isinstance(module, nn.Dense | nn.DenseGeneral):
            x = call_args[0]
            ins = tuple(x.shape[-_input_axes(module) :])
            features = module.features
            found[_path(module)] = (ins, tuple(features) if isinstance(features, Sequence) else (features,))
        return next_fun(*call_args, **call_kwargs)

    with nn.intercept_methods(record):
        jax.eval_shape(lambda *a: apply(*a, **kwargs), *args)
    return found


def init_lora(rng: jax.Array, sites: Sites, rank: int, patterns: Sequence[str]) -> dict[str, dict[str, jax.Array]]:
    """Adapters `{path: {"a": [in, rank], "b": [rank, out]}}` for the sites whose path fully matches one of
    `patterns` (regexes, or the names of `TARGETS`): `a` Kaiming-uniform as in the paper's code, `b` zeros."""
    if rank < 1:
        raise ValueError(f"LoRA rank={rank}: expected an integer >= 1")
    regexes = [re.compile(TARGETS.get(p, p)) for p in patterns]
    chosen = sorted(path for path in sites if any(r.fullmatch(path) for r in regexes))
    if not chosen:
        raise ValueError(f"LoRA targets {list(patterns)} match none of the projections: {sorted(sites)}")
    adapters = {}
    for i, path in enumerate(chosen):
        fan_in, fan_out = (math.prod(d) for d in sites[path])
        bound = math.sqrt(6.0 / ((1 + 5.0) * fan_in))  # kaiming_uniform_(a=sqrt(5)), as loralib
        a = jax.random.uniform(jax.random.fold_in(rng, i), (fan_in, rank), jnp.float32, -bound, bound)
        adapters[path] = {"a": a, "b": jnp.zeros((rank, fan_out), jnp.float32)}
    return adapters


def lora_scale(alpha: float, rank: int) -> float:
    """The paper's `alpha / r`."""
    return alpha / rank


@contextlib.contextmanager
def with_lora(adapters: dict[str, dict[str, jax.Array]], scale: float) -> Iterator[None]:
    """Inside, each projection named in `adapters` returns `W x + scale * (x a) b` (its own output first)."""

    def add_low_rank(next_fun, call_args, call_kwargs, context):
        out = next_fun(*call_args, **call_kwargs)
        module = context.module
        if context.method_name != "__call__" or not isinstance(module, nn.Dense | nn.DenseGeneral):
            return out
        adapter = adapters.get(_path(module))
        if adapter is None:
            return out
        x = call_args[0]
        axes = _input_axes(module)
        flat = x.reshape(*x.shape[: x.ndim - axes], -1).astype(jnp.float32)
        low = (flat @ adapter["a"]) @ adapter["b"] * scale
        return out + low.reshape(out.shape).astype(out.dtype)

    with nn.intercept_methods(add_low_rank):
        yield


def merge_lora(params: Any, adapters: dict[str, dict[str, jax.Array]], scale: float) -> Any:
    """`params` (unboxed, as the model's `apply` takes them) with each adapted kernel replaced by
    `W + scale * a b` (reshaped to the kernel's shape)."""

    def merge(path: tuple, leaf: jax.Array) -> jax.Array:
        names = [str(getattr(k, "key", k)) for k in path]
        adapter = adapters.get("/".join(names[:-1])) if names[-1] == "kernel" else None
        if adapter is None:
            return leaf
        return leaf + (scale * adapter["a"] @ adapter["b"]).reshape(leaf.shape).astype(leaf.dtype)

    return jax.tree_util.tree_map_with_path(merge, params)


__all__ = ["TARGETS", "init_lora", "lora_scale", "lora_sites", "merge_lora", "with_lora"]
