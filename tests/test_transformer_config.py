"""One keyword-built `TransformerConfig` for every stack of blocks; `attention_impl` declared once.

Read from the source (`ast`), so a new model that passes a stack's options positionally, or declares
its own `attention_impl`, fails here rather than drifting from the others.
"""

from __future__ import annotations

import ast
import dataclasses
import pathlib

import jax
import numpy as np
import pytest

from mmjax.config import ConfigError, dataclass_from_config
from mmjax.models.config import (
    STACK_FIELDS,
    AttentionOption,
    DecoderConfig,
    TransformerConfig,
    ViTConfig,
    transformer_config,
)
from mmjax.models.grid_mae import GridEncoderConfig
from mmjax.models.token_mae import TokenEncoder

SOURCE = pathlib.Path(__file__).resolve().parents[1] / "mmjax"


def _trees():
    for path in sorted(SOURCE.rglob("*.py")):
        yield path.relative_to(SOURCE.parent), ast.parse(path.read_text())


def test_attention_impl_is_declared_once():
    declared = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.AnnAssign) and getattr(item.target, "id", None) == "attention_impl":
                        declared.append(f"{path}:{node.name}")
    assert declared == ["mmjax/models/config.py:AttentionOption"]


def _called(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def test_stacks_are_built_from_a_config_by_keyword():
    calls = 0
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called(node) in ("TransformerStack", "TransformerConfig"):
                calls += 1
                assert not node.args, f"{path}:{node.lineno} passes {_called(node)} positional arguments"
                if _called(node) == "TransformerStack":
                    assert {k.arg for k in node.keywords} <= {"config", "name"}, f"{path}:{node.lineno}"
    assert calls >= 10
    with pytest.raises(TypeError):
        TransformerConfig(2, 4, 32)  # keyword-only


def test_a_section_gives_its_runtime_options_to_every_stack():
    vit = ViTConfig(image_size=8, patch_size=4, width=16, depth=2, heads=2, mlp_dim=32, remat="dots", scan=True)
    decoder = transformer_config(vit, DecoderConfig(width=16, depth=1, heads=4, mlp_dim=8))
    assert (decoder.depth, decoder.heads, decoder.mlp_dim) == (1, 4, 8)
    for name in set(STACK_FIELDS) - {"depth", "heads", "mlp_dim"}:
        assert getattr(decoder, name) == getattr(vit, name), name
    grid = GridEncoderConfig(width=16, depth=2, heads=2, mlp_dim=32, attention_impl="xla")
    assert transformer_config(grid).scan is False  # a field the section lacks keeps its default
    assert dataclasses.replace(decoder, dtype="bfloat16").compute_dtype == np.dtype("bfloat16")


def test_every_attention_section_checks_the_one_knob():
    for cls in (ViTConfig, GridEncoderConfig, AttentionOption):
        with pytest.raises(ConfigError, match=r"model.attention_impl='flash9': expected one of"):
            dataclass_from_config(cls, {"attention_impl": "flash9"}, "model")
    with pytest.raises(ValueError, match="model.attention_impl must be one of .* got 'flash9'"):
        ViTConfig(attention_impl="flash9")  # built in Python, not from a config
    with pytest.raises(ValueError, match="transformer.attention_impl must be one of"):
        TransformerConfig(depth=1, heads=1, mlp_dim=4, attention_impl="flash9")


def test_token_encoder_names_its_intermediates():
    encoder = TokenEncoder(width=8, transformer=TransformerConfig(depth=2, heads=2, mlp_dim=16))
    tokens = jax.random.normal(jax.random.key(0), (2, 5, 8))
    params = encoder.init(jax.random.key(1), tokens)
    x, out = encoder.apply(params, tokens)
    assert sorted(out) == ["block1", "block2", "encoded"]
    np.testing.assert_array_equal(out["encoded"], x)
    last = np.asarray(out["block2"])  # the last block's output, before the final LayerNorm
    normed = (last - last.mean(-1, keepdims=True)) / np.sqrt(last.var(-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(normed, np.asarray(x), atol=1e-4)  # the norm's scale and bias start at 1 and 0
