"""BEiT's encoder options against HF transformers `BeitForMaskedImageModeling` and `Data2VecVisionModel`,
weights converted by mmjax.export.hf_beit; and the options' own invariants (scan, sparse encoding)."""

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from mmjax.export.hf_beit import (  # noqa: E402
    convert_hf_beit,
    convert_hf_data2vec_vision,
    to_hf_beit,
    to_hf_data2vec_vision,
)
from mmjax.export.plan import CheckpointMismatchError  # noqa: E402
from mmjax.losses import masked_mean  # noqa: E402
from mmjax.models.config import ViTConfig  # noqa: E402
from mmjax.models.transformer import last_block_cls_attention, stack_layers  # noqa: E402
from mmjax.models.vit import ViTEncoder  # noqa: E402
from mmjax.ops.patches import patchify, unpatchify  # noqa: E402
from mmjax.ops.relative_position import relative_position_index  # noqa: E402
from tests.export_helpers import randomize_torch  # noqa: E402

# Configurations no other test uses: 20 px images, 4 px patches (a 5 x 5 grid), 2 channels.
BEIT_TINY = dict(
    image_size=20,
    patch_size=4,
    num_channels=2,
    hidden_size=24,
    num_hidden_layers=2,
    num_attention_heads=3,
    intermediate_size=40,
    vocab_size=11,
    layer_norm_eps=1e-6,
    layer_scale_init_value=0.1,
    use_mask_token=True,
    drop_path_rate=0.0,
)
# shared table + absolute positions, or one table per block and no absolute positions.
VARIANTS = {
    "shared": dict(use_shared_relative_position_bias=True, use_absolute_position_embeddings=True),
    "layer": dict(use_relative_position_bias=True, use_absolute_position_embeddings=False),
}
# 12 px images, 3 px patches (a 4 x 4 grid), 3 channels, 3 blocks.
DATA2VEC_TINY = dict(
    image_size=12,
    patch_size=3,
    num_channels=3,
    hidden_size=16,
    num_hidden_layers=3,
    num_attention_heads=2,
    intermediate_size=20,
    layer_norm_eps=1e-5,
    layer_scale_init_value=0.2,
    use_mask_token=True,
    use_relative_position_bias=True,
    use_absolute_position_embeddings=True,
    use_mean_pooling=False,
    drop_path_rate=0.0,
)


def randomize(model, seed):
    # HF's init zeroes the tables, cls/mask tokens and biases and sets the lambdas to a constant.
    return randomize_torch(model, seed=seed, buffers=False)


def beit_model(variant, seed=0):
    config = transformers.BeitConfig(**BEIT_TINY, **VARIANTS[variant])
    return randomize(transformers.BeitForMaskedImageModeling(config), seed)


def beit_inputs(seed, size=20, channels=2, batch=3):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(batch, size, size, channels)).astype(np.float32)
    hidden = rng.random((batch, (size // BEIT_TINY["patch_size"]) ** 2)) < 0.4
    labels = rng.integers(0, BEIT_TINY["vocab_size"], size=(batch, hidden.shape[1]))
    return images, hidden, labels


def hf_beit_forward(model, images, hidden, labels=None):
    with torch.no_grad():
        out = model(
            torch.from_numpy(images).permute(0, 3, 1, 2),
            bool_masked_pos=torch.from_numpy(hidden),
            labels=None if labels is None else torch.from_numpy(labels[hidden]),
        )
    return out.logits.numpy(), None if labels is None else out.loss.item()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_beit_matches_hf_with_every_parameter_random(variant):
    hf = beit_model(variant)
    images, hidden, labels = beit_inputs(1)
    hf_logits, hf_loss = hf_beit_forward(hf, images, hidden, labels)
    model, params = convert_hf_beit(hf.state_dict(), hf.config)
    cfg = model.config
    assert (cfg.rel_pos_bias, cfg.layer_scale, cfg.key_bias) == (variant, 0.1, False)
    assert cfg.posemb == ("learned" if variant == "shared" else "none")
    logits = model.apply({"params": params}, jnp.asarray(images), jnp.asarray(hidden))
    np.testing.assert_allclose(np.asarray(logits), hf_logits, atol=1e-4)
    # HF's loss: cross entropy of the hidden patches' logits against their labels, averaged.
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(labels))
    np.testing.assert_allclose(float(masked_mean(ce, jnp.asarray(hidden))), hf_loss, rtol=1e-5)


def test_imported_beit_params_do_not_share_memory_with_the_torch_model():
    # Before: the converted arrays were views of the torch tensors (see the VideoMAE test of the same name).
    hf = beit_model("shared")
    _, params = convert_hf_beit(hf.state_dict(), hf.config)
    before = jax.tree.map(np.array, params)
    with torch.no_grad():
        for param in hf.parameters():
            param.mul_(2.0).add_(1.0)
    jax.tree.map(np.testing.assert_array_equal, params, before)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_beit_exports_back_exactly_to_a_model_hf_loads_strictly(variant):
    hf = beit_model(variant, seed=2)
    model, params = convert_hf_beit(hf.state_dict(), hf.config)
    state, hf_config = to_hf_beit(model, params)
    assert set(state) == set(hf.state_dict())
    for key, value in hf.state_dict().items():
        np.testing.assert_array_equal(state[key], value.numpy(), err_msg=key)
    again = transformers.BeitForMaskedImageModeling(transformers.BeitConfig(**hf_config)).eval()
    again.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    images, hidden, _ = beit_inputs(3)
    np.testing.assert_allclose(hf_beit_forward(again, images, hidden)[0], hf_beit_forward(hf, images, hidden)[0])
    # and back again: the mmjax params are the same arrays.
    _, params_again = convert_hf_beit(state, hf_config)
    jax.tree.map(np.testing.assert_array_equal, params_again, params)


def test_sown_cls_attention_includes_the_relative_bias_as_hf():
    # AttMask reads the last block's [CLS] attention; with a relative bias it must include it.
    config = transformers.BeitConfig(**BEIT_TINY, **VARIANTS["shared"])
    config._attn_implementation = "eager"  # HF returns attention weights from its eager path only
    hf = randomize(transformers.BeitForMaskedImageModeling(config), seed=11)
    images, hidden, _ = beit_inputs(12)
    with torch.no_grad():
        pixels = torch.from_numpy(images).permute(0, 3, 1, 2)
        out = hf(pixels, bool_masked_pos=torch.from_numpy(hidden), output_attentions=True)
    model, params = convert_hf_beit(hf.state_dict(), hf.config)
    _, state = model.apply({"params": params}, jnp.asarray(images), jnp.asarray(hidden), mutable=["intermediates"])
    ours = last_block_cls_attention(state["intermediates"]["encoder"]["blocks"], BEIT_TINY["num_hidden_layers"])
    np.testing.assert_allclose(np.asarray(ours), out.attentions[-1][:, :, 0].mean(1).numpy(), atol=1e-5)


def test_beit_files_saved_by_hf_convert_to_the_same_params(tmp_path):
    from safetensors.numpy import load_file

    hf = beit_model("layer", seed=4)
    hf.save_pretrained(tmp_path)
    on_disk = load_file(os.path.join(tmp_path, "model.safetensors"))  # 4.x key names
    assert "beit.encoder.layer.1.attention.attention.relative_position_bias.relative_position_bias_table" in on_disk
    _, from_disk = convert_hf_beit(on_disk, hf.config)
    _, in_memory = convert_hf_beit(hf.state_dict(), hf.config)
    jax.tree.map(np.testing.assert_array_equal, from_disk, in_memory)
    # Old checkpoints also hold the index as a buffer: checked, then dropped.
    key = "beit.encoder.layer.0.attention.attention.relative_position_index"
    _, with_index = convert_hf_beit({**on_disk, key: relative_position_index((5, 5))}, hf.config)
    jax.tree.map(np.testing.assert_array_equal, with_index, in_memory)
    with pytest.raises(CheckpointMismatchError, match="relative_position_index"):
        convert_hf_beit({**on_disk, key: relative_position_index((5, 5)).T}, hf.config)


def test_a_missing_or_unexpected_key_is_named():
    state = dict(beit_model("shared").state_dict())
    del state["beit.shared_position_bias.relative_position_bias_table"]
    state["beit.layers.0.attention.k_proj.bias"] = torch.zeros(24)
    with pytest.raises(CheckpointMismatchError) as err:
        convert_hf_beit(state, beit_model("shared").config)
    assert err.value.missing == ["beit.shared_position_bias.relative_position_bias_table"]
    assert err.value.unexpected == ["beit.layers.0.attention.k_proj.bias"]
    assert "beit.shared_position_bias.relative_position_bias_table" in str(err.value)


def test_configs_hf_computes_differently_are_refused():
    config = {**BEIT_TINY, **VARIANTS["layer"]}
    with pytest.raises(ValueError, match=r"image_size=\[20, 24\].*only square images"):
        convert_hf_beit({}, {**config, "image_size": [20, 24]})
    with pytest.raises(ValueError, match="use_mean_pooling=False is not supported for HF BeitForMaskedImageModeling"):
        convert_hf_beit({}, {**config, "use_mean_pooling": False})
    with pytest.raises(ValueError, match="both true"):
        convert_hf_beit({}, {**config, "use_shared_relative_position_bias": True})
    with pytest.raises(ValueError, match="use_mean_pooling=True is not supported for HF Data2VecVisionModel"):
        convert_hf_data2vec_vision({}, {**DATA2VEC_TINY, "use_mean_pooling": True})


def test_data2vec_vision_hidden_states_match_and_export_back():
    config = transformers.Data2VecVisionConfig(**DATA2VEC_TINY)
    hf = randomize(transformers.Data2VecVisionModel(config, add_pooling_layer=False), seed=5)
    rng = np.random.default_rng(6)
    images = rng.normal(size=(2, 12, 12, 3)).astype(np.float32)
    hidden = rng.random((2, 16)) < 0.5
    with torch.no_grad():
        out = hf(torch.from_numpy(images).permute(0, 3, 1, 2), bool_masked_pos=torch.from_numpy(hidden))
    vit_config, params = convert_hf_data2vec_vision(hf.state_dict(), hf.config)
    assert (vit_config.rel_pos_bias, vit_config.posemb, vit_config.layer_scale) == ("layer", "learned", 0.2)
    ours = ViTEncoder(vit_config).apply({"params": params}, jnp.asarray(images), hidden=jnp.asarray(hidden))[0]
    np.testing.assert_allclose(np.asarray(ours), out.last_hidden_state.numpy(), atol=1e-4)
    state, hf_config = to_hf_data2vec_vision(vit_config, params)
    assert set(state) == set(hf.state_dict())
    for key, value in hf.state_dict().items():
        np.testing.assert_array_equal(state[key], value.numpy(), err_msg=key)
    again = transformers.Data2VecVisionModel(transformers.Data2VecVisionConfig(**hf_config), add_pooling_layer=False)
    again.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)


def test_relative_index_matches_hf_on_a_non_square_grid():
    from transformers.models.beit.modeling_beit import BeitRelativePositionBias

    theirs = BeitRelativePositionBias.generate_relative_position_index((3, 5)).numpy()
    np.testing.assert_array_equal(relative_position_index((3, 5)), theirs)
    assert relative_position_index((3, 5)).max() == 5 * 9 + 2


def tiny_encoder(rel_pos_bias, **overrides):
    fields = dict(
        image_size=(8, 12),
        patch_size=4,
        channels=1,
        width=16,
        depth=3,
        heads=2,
        mlp_dim=24,
        posemb="none",
        key_bias=False,
        layer_scale=0.3,
        rel_pos_bias=rel_pos_bias,
    )
    return ViTConfig(**{**fields, **overrides})


def random_params(config, seed):
    params = nn.meta.unbox(ViTEncoder(config).init(jax.random.key(0), jnp.zeros((1, 8, 12, 1)))["params"])
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree.unflatten(tree, [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves, strict=True)])


@pytest.mark.parametrize("rel_pos_bias", ["shared", "layer"])
def test_scanned_encoder_with_beit_options_equals_the_unrolled_one(rel_pos_bias):
    unrolled = tiny_encoder(rel_pos_bias)
    params = random_params(unrolled, seed=7)
    scanned_params = {**params, "blocks": stack_layers(params["blocks"], unrolled.depth)}
    images = jax.random.normal(jax.random.key(8), (2, 8, 12, 1))
    ids_keep = jnp.array([[5, 0, 3], [1, 2, 4]])
    for kwargs in ({}, {"ids_keep": ids_keep}):
        want = ViTEncoder(unrolled).apply({"params": params}, images, **kwargs)[0]
        for extra in ({"scan": True}, {"scan": True, "remat": "full"}):
            got = ViTEncoder(tiny_encoder(rel_pos_bias, **extra)).apply({"params": scanned_params}, images, **kwargs)[0]
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


@pytest.mark.parametrize("rel_pos_bias", ["shared", "layer"])
def test_sparse_encoding_keeps_each_patch_its_relative_positions(rel_pos_bias):
    # With no absolute table, positions come only from the relative bias: encoding all patches
    # in another order must permute the outputs, and a wrong index would not.
    config = tiny_encoder(rel_pos_bias)
    params = random_params(config, seed=9)
    images = jax.random.normal(jax.random.key(10), (2, 8, 12, 1))
    order = jnp.array([[4, 1, 5, 0, 2, 3], [2, 0, 1, 3, 5, 4]])
    full = np.asarray(ViTEncoder(config).apply({"params": params}, images)[0])
    permuted = np.asarray(ViTEncoder(config).apply({"params": params}, images, ids_keep=order)[0])
    np.testing.assert_allclose(permuted[:, 0], full[:, 0], atol=1e-5)
    np.testing.assert_allclose(
        permuted[:, 1:], np.take_along_axis(full[:, 1:], np.asarray(order)[..., None], 1), atol=1e-5
    )
    # The check has teeth: moving the patches themselves (their positions change) changes the outputs.
    patches = jnp.take_along_axis(patchify(images, 4), order[..., None], 1)
    moved = np.asarray(ViTEncoder(config).apply({"params": params}, unpatchify(patches, (2, 3), 4))[0])
    assert np.abs(moved[:, 1:] - permuted[:, 1:]).max() > 1e-2


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="model.rel_pos_bias must be one of"):
        tiny_encoder("both")
    with pytest.raises(ValueError, match="model.layer_scale must be a finite number >= 0"):
        tiny_encoder("none", layer_scale=-0.1)
    with pytest.raises(ValueError, match=r"model.posemb must be one of \('sincos2d', 'learned', 'none'\)"):
        tiny_encoder("none", posemb="rope")


def test_hf_vit_exporters_refuse_beit_options():
    from mmjax.export.hf_vit import to_hf_vit

    with pytest.raises(ValueError, match=r"HF ViT has no model.rel_pos_bias='layer', model.layer_scale=0.3"):
        to_hf_vit(tiny_encoder("layer", image_size=12, posemb="learned", key_bias=True), {})
