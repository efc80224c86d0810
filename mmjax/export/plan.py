"""Key plans: how one library's flat state dict maps onto an mmjax params pytree, both ways.

A plan is `{source key: Entry}`. Each entry names the mmjax parameter path(s) it fills, the
source tensor's shape, and the two exact (transpose/reshape only) conversions. Import checks
every key first and raises `CheckpointMismatchError` listing every missing, unexpected and
mis-shaped key; export walks the same plan backwards, so a round trip is bitwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

Path = tuple[str, ...]


class CheckpointMismatchError(ValueError):
    """The checkpoint's keys or shapes do not fit the model its config describes."""

    def __init__(self, missing: list[str], unexpected: list[str], mismatched: list[str]):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        parts = []
        for title, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("shape mismatch", mismatched),
        ):
            if items:
                parts.append(f"{title} ({len(items)}): " + ", ".join(items))
        super().__init__("checkpoint does not fit the model: " + "; ".join(parts))


@dataclasses.dataclass(frozen=True)
class Entry:
    """One source tensor: fills `paths` (usually one; a fused qkv fills three).

    `to_mmjax(array) -> tuple of arrays` (one per path); `to_source(*arrays) -> array`.
    """

    paths: tuple[Path, ...]
    shape: tuple[int, ...]
    to_mmjax: Callable[[np.ndarray], tuple[np.ndarray, ...]]
    to_source: Callable[..., np.ndarray]


Plan = dict[str, Entry]


def to_numpy(value: Any) -> np.ndarray:
    """A torch tensor or array-like as a float32 numpy array of its own (torch stays an optional import).

    Always a copy: `Tensor.numpy()` of a float32 CPU tensor shares its memory, so an in-place change to
    the torch model after an import would otherwise change the imported parameters too.
    """
    if hasattr(value, "detach"):
        value = value.detach().cpu().float().numpy()
    return np.array(value, dtype=np.float32, copy=True)


class PlanBuilder:
    """Adds entries for the layer kinds ViTs use; `plan` holds the result."""

    def __init__(self):
        self.plan: Plan = {}

    def tensor(self, key: str, path: Path, shape: tuple[int, ...]) -> None:
        """A tensor stored the same way on both sides."""
        self.plan[key] = Entry((path,), shape, lambda a: (a,), lambda a: a)

    def linear(
        self,
        key: str,
        path: Path,
        d_in: int,
        d_out: int,
        kernel_shape: tuple[int, ...] | None = None,
        bias_shape: tuple[int, ...] | None = None,
        bias: bool = True,
    ) -> None:
        """Torch `Linear` `key.weight` `(out, in)` / `key.bias` -> mmjax `kernel` `(in, out)` reshaped."""
        kernel_shape, bias_shape = kernel_shape or (d_in, d_out), bias_shape or (d_out,)
        self.plan[f"{key}.weight"] = Entry(
            ((*path, "kernel"),),
            (d_out, d_in),
            lambda w: (w.T.reshape(kernel_shape),),
            lambda k: k.reshape(d_in, d_out).T,
        )
        if bias:
            self.plan[f"{key}.bias"] = Entry(
                ((*path, "bias"),), (d_out,), lambda b: (b.reshape(bias_shape),), lambda b: b.reshape(d_out)
            )

    def fused_qkv(self, key: str, path: Path, dim: int, heads: int, bias: bool = True) -> None:
        """timm's fused `qkv` Linear `(3D, D)` -> separate `query`/`key`/`value` DenseGeneral params."""
        head_dim = dim // heads
        names = ("query", "key", "value")

        def split_weight(w):
            return tuple(part.T.reshape(dim, heads, head_dim) for part in np.split(w, 3, axis=0))

        def join_weight(*kernels):
            return np.concatenate([k.reshape(dim, dim).T for k in kernels], axis=0)

        self.plan[f"{key}.weight"] = Entry(
            tuple((*path, n, "kernel") for n in names), (3 * dim, dim), split_weight, join_weight
        )
        if bias:
            self.plan[f"{key}.bias"] = Entry(
                tuple((*path, n, "bias") for n in names),
                (3 * dim,),
                lambda b: tuple(part.reshape(heads, head_dim) for part in np.split(b, 3)),
                lambda *bs: np.concatenate([b.reshape(dim) for b in bs]),
            )

    def norm(self, key: str, path: Path, dim: int) -> None:
        """LayerNorm `weight`/`bias` -> `scale`/`bias`."""
        self.tensor(f"{key}.weight", (*path, "scale"), (dim,))
        self.tensor(f"{key}.bias", (*path, "bias"), (dim,))

    def patch_conv(self, key: str, path: Path, dim: int, channels: int, patch: tuple[int, int]) -> None:
        """Stride-p conv `[D, C, p_h, p_w]` -> Dense kernel `[p_h * p_w * C, D]` in (row, col, channel) order."""
        ph, pw = patch
        self.plan[f"{key}.weight"] = Entry(
            ((*path, "kernel"),),
            (dim, channels, ph, pw),
            lambda w: (np.transpose(w, (2, 3, 1, 0)).reshape(-1, dim),),
            lambda k: np.transpose(k.reshape(ph, pw, channels, dim), (3, 2, 0, 1)),
        )
        self.tensor(f"{key}.bias", (*path, "bias"), (dim,))


@dataclasses.dataclass(frozen=True)
class BlockNames:
    """Source names inside one pre-LN transformer block (relative to the block prefix)."""

    qkv: tuple[str, str, str] | str  # three separate Linears, or one fused Linear
    out: str
    norm1: str
    norm2: str
    fc1: str
    fc2: str


HF_BLOCK = BlockNames(
    qkv=("attention.q_proj", "attention.k_proj", "attention.v_proj"),
    out="attention.o_proj",
    norm1="layernorm_before",
    norm2="layernorm_after",
    fc1="mlp.fc1",
    fc2="mlp.fc2",
)
TIMM_BLOCK = BlockNames(qkv="attn.qkv", out="attn.proj", norm1="norm1", norm2="norm2", fc1="mlp.fc1", fc2="mlp.fc2")


def add_block(
    builder: PlanBuilder,
    prefix: str,
    path: Path,
    names: BlockNames,
    dim: int,
    heads: int,
    mlp: int,
    qkv_bias: bool,
) -> None:
    """Entries for one mmjax `EncoderBlock` at `path` from source keys under `prefix`."""
    head_dim = dim // heads
    if isinstance(names.qkv, str):
        builder.fused_qkv(f"{prefix}.{names.qkv}", (*path, "attn"), dim, heads, bias=qkv_bias)
    else:
        for source, name in zip(names.qkv, ("query", "key", "value"), strict=True):
            builder.linear(
                f"{prefix}.{source}",
                (*path, "attn", name),
                dim,
                dim,
                kernel_shape=(dim, heads, head_dim),
                bias_shape=(heads, head_dim),
                bias=qkv_bias,
            )
    builder.linear(f"{prefix}.{names.out}", (*path, "attn", "out"), dim, dim, kernel_shape=(heads, head_dim, dim))
    builder.norm(f"{prefix}.{names.norm1}", (*path, "norm1"), dim)
    builder.norm(f"{prefix}.{names.norm2}", (*path, "norm2"), dim)
    builder.linear(f"{prefix}.{names.fc1}", (*path, "mlp", "fc1"), dim, mlp)
    builder.linear(f"{prefix}.{names.fc2}", (*path, "mlp", "fc2"), mlp, dim)


def check_plan(plan: Plan, arrays: Mapping[str, np.ndarray]) -> None:
    """Raise `CheckpointMismatchError` listing every missing, unexpected and mis-shaped key."""
    missing = sorted(set(plan) - set(arrays))
    unexpected = sorted(set(arrays) - set(plan))
    mismatched = sorted(
        f"{key} {tuple(arrays[key].shape)} != {entry.shape}"
        for key, entry in plan.items()
        if key in arrays and tuple(arrays[key].shape) != entry.shape
    )
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(missing, unexpected, mismatched)


def apply_plan(plan: Plan, arrays: Mapping[str, np.ndarray], skip: Iterable[str] = ()) -> dict[str, Any]:
    """Checked source arrays -> nested mmjax params (numpy float32); keys in `skip` are dropped."""
    check_plan(plan, arrays)
    skip = set(skip)
    params: dict[str, Any] = {}
    for key, entry in plan.items():
        if key in skip:
            continue
        for path, value in zip(entry.paths, entry.to_mmjax(arrays[key]), strict=True):
            node = params
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = np.ascontiguousarray(value, dtype=np.float32)
    return params


def get_path(params: Mapping[str, Any], path: Path) -> np.ndarray:
    """`params[path[0]][path[1]]...` as numpy, with an error naming the missing path."""
    node: Any = params
    for i, part in enumerate(path):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(f"params have no {'/'.join(path[: i + 1])}")
        node = node[part]
    return np.asarray(node)


def invert_plan(
    plan: Plan, params: Mapping[str, Any], fixed: Mapping[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """mmjax params -> source state dict (numpy float32); `fixed` supplies keys without a parameter."""
    fixed = dict(fixed or {})
    out = {}
    for key, entry in plan.items():
        if key in fixed:
            value = fixed[key]
        else:
            value = entry.to_source(*(get_path(params, p) for p in entry.paths))
        value = np.ascontiguousarray(value, dtype=np.float32)
        if value.shape != entry.shape:
            raise ValueError(f"{key}: built shape {value.shape}, expected {entry.shape}")
        out[key] = value
    return out
