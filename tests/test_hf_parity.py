"""MAE against HF transformers `ViTMAEForPreTraining`, weights converted by mmjax.export."""

import re
import unittest.mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from mmjax.export import CheckpointMismatchError, convert_hf_vitmae  # noqa: E402
from mmjax.methods import MAE  # noqa: E402

TINY = dict(
    image_size=32,
    patch_size=8,
    num_channels=3,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    decoder_hidden_size=16,
    decoder_num_hidden_layers=2,
    decoder_num_attention_heads=2,
    decoder_intermediate_size=40,
    mask_ratio=0.75,
)


def hf_model(norm_pix_loss: bool, seed: int = 0, **overrides):
    config = transformers.ViTMAEConfig(**{**TINY, **overrides}, norm_pix_loss=norm_pix_loss)
    torch.manual_seed(seed)
    model = transformers.ViTMAEForPreTraining(config).eval()
    # HF's init leaves position tables, cls and mask tokens at zero: randomise everything.
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn_like(param) * 0.5)
    return model


def hf_sincos(grid: int, dim: int) -> torch.Tensor:
    """MAE's table as HF builds it for pretrained weights (halves rotated to MAE's layout)."""
    from transformers.models.vit_mae.modeling_vit_mae import build_2d_sinusoidal_position_embedding

    table = build_2d_sinusoidal_position_embedding(grid, grid, dim, cls_token=True)
    half = dim // 2
    return torch.cat([table[:, half:], table[:, :half]], dim=-1)[None]


def run_both(model, batch_size=3, seed=1):
    rng = np.random.default_rng(seed)
    n = (TINY["image_size"] // TINY["patch_size"]) ** 2
    images = rng.normal(size=(batch_size, TINY["image_size"], TINY["image_size"], 3)).astype(np.float32)
    noise = rng.uniform(size=(batch_size, n)).astype(np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(images).permute(0, 3, 1, 2), noise=torch.from_numpy(noise))
    config, params = convert_hf_vitmae(model.state_dict(), model.config)
    mae = MAE.from_config(config)
    batch = {"image": jnp.asarray(images)}
    loss, _ = mae.loss(params, batch, jax.random.key(0), noise=jnp.asarray(noise))
    pred, mask = mae.predict(params, batch, jax.random.key(0), noise=jnp.asarray(noise))
    return out, config, loss, pred, mask


@pytest.mark.parametrize("norm_pix_loss", [False, True])
def test_matches_hf_with_every_parameter_random(norm_pix_loss):
    out, config, loss, pred, mask = run_both(hf_model(norm_pix_loss))
    assert config.model.posemb == "learned" and config.decoder.posemb == "learned"
    np.testing.assert_array_equal(np.asarray(mask.mask, np.float32), out.mask.numpy())
    np.testing.assert_allclose(np.asarray(pred), out.logits.numpy(), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(float(loss), out.loss.item(), atol=1e-5, rtol=1e-5)


def test_a_non_square_hf_vitmae_converts_and_matches():
    # HF builds ViTMAE's sincos tables and its loss for square grids only, so the model is
    # built without its table init (every parameter is randomized anyway) and compared on the
    # decoder's logits; the loss, which HF refuses at 16 x 32, is compared on square inputs above.
    from transformers.models.vit_mae import modeling_vit_mae as hf_mae

    square_only = (
        unittest.mock.patch.object(hf_mae.ViTMAEDecoder, "initialize_weights", lambda self, n: None),
        unittest.mock.patch.object(hf_mae.ViTMAEEmbeddings, "initialize_weights", lambda self: None),
    )
    with square_only[0], square_only[1]:
        model = hf_model(norm_pix_loss=True, seed=5, image_size=[16, 32])
    rng = np.random.default_rng(2)
    images = rng.normal(size=(3, 16, 32, 3)).astype(np.float32)
    noise = rng.uniform(size=(3, 8)).astype(np.float32)
    with torch.no_grad():
        encoded = model.vit(torch.from_numpy(images).permute(0, 3, 1, 2), noise=torch.from_numpy(noise))
        logits = model.decoder(encoded.last_hidden_state, encoded.ids_restore).logits
    config, params = convert_hf_vitmae(model.state_dict(), model.config)
    assert tuple(config.model.image_size) == (16, 32)
    mae = MAE.from_config(config)
    assert mae.model_config.grid == (2, 4)
    pred, mask = mae.predict(params, {"image": jnp.asarray(images)}, jax.random.key(0), noise=jnp.asarray(noise))
    np.testing.assert_array_equal(np.asarray(mask.mask, np.float32), encoded.mask.numpy())
    np.testing.assert_allclose(np.asarray(pred), logits.numpy(), atol=1e-5, rtol=1e-5)


def test_matches_hf_with_fixed_sincos_tables():
    model = hf_model(norm_pix_loss=True, seed=3)
    grid = TINY["image_size"] // TINY["patch_size"]
    with torch.no_grad():
        model.vit.embeddings.position_embeddings.copy_(hf_sincos(grid, TINY["hidden_size"]))
        model.decoder.decoder_pos_embed.copy_(hf_sincos(grid, TINY["decoder_hidden_size"]))
    out, config, loss, pred, mask = run_both(model)
    # The converter recognises MAE's fixed table, so mmjax recomputes it instead of storing it.
    assert config.model.posemb == "sincos2d" and config.decoder.posemb == "sincos2d"
    np.testing.assert_allclose(np.asarray(pred), out.logits.numpy(), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(float(loss), out.loss.item(), atol=1e-5, rtol=1e-5)


# transformers 4.x key names as written by hub checkpoints, spelled out independently.
V4_NAMES = [
    (r"^vit\.layers\.(\d+)\.attention\.q_proj\.", r"vit.encoder.layer.\1.attention.attention.query."),
    (r"^vit\.layers\.(\d+)\.attention\.k_proj\.", r"vit.encoder.layer.\1.attention.attention.key."),
    (r"^vit\.layers\.(\d+)\.attention\.v_proj\.", r"vit.encoder.layer.\1.attention.attention.value."),
    (r"^vit\.layers\.(\d+)\.attention\.o_proj\.", r"vit.encoder.layer.\1.attention.output.dense."),
    (r"^vit\.layers\.(\d+)\.mlp\.fc1\.", r"vit.encoder.layer.\1.intermediate.dense."),
    (r"^vit\.layers\.(\d+)\.mlp\.fc2\.", r"vit.encoder.layer.\1.output.dense."),
    (r"^vit\.layers\.(\d+)\.", r"vit.encoder.layer.\1."),
    (r"\.decoder_layers\.(\d+)\.attention\.q_proj\.", r".decoder_layers.\1.attention.attention.query."),
    (r"\.decoder_layers\.(\d+)\.attention\.k_proj\.", r".decoder_layers.\1.attention.attention.key."),
    (r"\.decoder_layers\.(\d+)\.attention\.v_proj\.", r".decoder_layers.\1.attention.attention.value."),
    (r"\.decoder_layers\.(\d+)\.attention\.o_proj\.", r".decoder_layers.\1.attention.output.dense."),
    (r"\.decoder_layers\.(\d+)\.mlp\.fc1\.", r".decoder_layers.\1.intermediate.dense."),
    (r"\.decoder_layers\.(\d+)\.mlp\.fc2\.", r".decoder_layers.\1.output.dense."),
]


def to_v4(key: str) -> str:
    for pattern, repl in V4_NAMES:
        key = re.sub(pattern, repl, key)
    return key


def test_v4_key_names_convert_to_the_same_params():
    model = hf_model(norm_pix_loss=False)
    state = model.state_dict()
    v4 = {to_v4(k): v for k, v in state.items()}
    assert "vit.encoder.layer.0.attention.attention.query.weight" in v4
    assert "decoder.decoder_layers.1.output.dense.bias" in v4
    _, params5 = convert_hf_vitmae(state, model.config)
    _, params4 = convert_hf_vitmae(v4, model.config)
    jax.tree.map(np.testing.assert_array_equal, params5, params4)


def test_mismatched_checkpoint_lists_every_problem():
    model = hf_model(norm_pix_loss=False)
    state = dict(model.state_dict())
    del state["vit.layers.1.mlp.fc2.bias"]
    state["vit.extra.weight"] = torch.zeros(3)
    state["decoder.decoder_pred.weight"] = torch.zeros(5, 16)
    with pytest.raises(CheckpointMismatchError) as err:
        convert_hf_vitmae(state, model.config)
    assert err.value.missing == ["vit.layers.1.mlp.fc2.bias"]
    assert err.value.unexpected == ["vit.extra.weight"]
    assert err.value.mismatched and err.value.mismatched[0].startswith("decoder.decoder_pred.weight")
    assert "vit.extra.weight" in str(err.value)


def test_converted_params_match_mmjax_init_structure():
    model = hf_model(norm_pix_loss=False)
    config, params = convert_hf_vitmae(model.state_dict(), model.config)
    mae = MAE.from_config(config)
    fresh = mae.init(jax.random.key(0), {"image": jnp.zeros((1, 32, 32, 3))})
    assert jax.tree.structure(fresh) == jax.tree.structure(params)
    assert jax.tree.map(np.shape, fresh) == jax.tree.map(np.shape, params)
