"""LoRA: adapters added at the projections (unmerged) equal the same adapters folded into the kernels (merged)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.models.lora import init_lora, lora_sites, merge_lora, with_lora
from mmjax.models.vit import ViTEncoder
from mmjax.train import build_method
from tests.helpers import load_experiment


@pytest.fixture(scope="module")
def encoder():
    config = build_method(load_experiment("mae_digits")).model_config
    model = ViTEncoder(config)
    images = jnp.asarray(np.random.default_rng(0).normal(size=(3, 8, 8, 1)), jnp.float32)
    params = nn.meta.unbox(model.init(jax.random.key(0), images)["params"])
    return model, params, images


def test_sites_are_every_projection_with_its_input_and_output_dims(encoder):
    model, params, images = encoder
    sites = lora_sites(lambda p, x: model.apply({"params": p}, x)[0], params, images)
    assert sites["blocks/block_0/attn/query"] == ((32,), (4, 8))
    assert sites["blocks/block_1/attn/out"] == ((4, 8), (32,))  # DenseGeneral over two input axes
    assert sites["blocks/block_0/mlp/fc2"] == ((64,), (32,))
    adapters = init_lora(jax.random.key(1), sites, 4, ["query_value"])
    assert sorted(adapters) == [f"blocks/block_{i}/attn/{n}" for i in (0, 1) for n in ("query", "value")]
    with pytest.raises(ValueError, match="match none of the projections"):
        init_lora(jax.random.key(1), sites, 4, ["attn/qkv"])


def test_merged_equals_unmerged_and_a_fresh_adapter_changes_nothing(encoder):
    model, params, images = encoder
    apply = jax.jit(lambda p, a, x: _unmerged(model, p, a, x))
    sites = lora_sites(lambda p, x: model.apply({"params": p}, x)[0], params, images)
    fresh = init_lora(jax.random.key(1), sites, 4, ["attention", "mlp"])
    base = model.apply({"params": params}, images)[0]
    np.testing.assert_allclose(apply(params, fresh, images), base, atol=1e-6)  # b = 0 (up to the compiled order)
    trained = {
        k: {"a": v["a"], "b": 0.1 * jax.random.normal(jax.random.key(2), v["b"].shape)} for k, v in fresh.items()
    }
    unmerged = apply(params, trained, images)
    merged = model.apply({"params": merge_lora(params, trained, 2.0)}, images)[0]
    assert float(jnp.max(jnp.abs(unmerged - base))) > 0.1  # the adapters matter
    np.testing.assert_allclose(unmerged, merged, atol=1e-5, rtol=1e-5)


def _unmerged(model, params, adapters, images):
    with with_lora(adapters, 2.0):
        return model.apply({"params": params}, images)[0]
