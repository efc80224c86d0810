"""VideoMAE against HF transformers `VideoMAEForPreTraining`, weights converted by mmjax.export.hf_videomae.

Both sides get the same clips in the units each expects: HF's `pixel_values` `[B, T, C, H, W]` and
mmjax's `video` `[B, T, H, W, C]` hold the same normalized values (what the `video` data kind
feeds the model); each un-normalizes RGB clips with the ImageNet mean / std for its targets (HF
inside its forward, mmjax through `videomae.unnormalize_target` and `data.mean` / `data.std`).
The hidden tokens are one tube mask drawn by mmjax and given to HF as `bool_masked_pos`.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from mmjax.export.hf_videomae import (  # noqa: E402
    convert_hf_videomae,
    hf_masked_predictions,
    load_hf_videomae,
    mask_from_hf,
    save_hf_videomae,
    to_hf_videomae,
)
from mmjax.export.plan import CheckpointMismatchError  # noqa: E402
from mmjax.methods.videomae import VideoMAE  # noqa: E402
from mmjax.models.grid_mae import grid_positions  # noqa: E402
from tests.export_helpers import randomize_torch  # noqa: E402

# A configuration no other test uses: 4 frames of 16 x 24 (non-square), 2 x 8 x 8 tubelets (a 2 x 2 x 3 grid).
TINY = dict(
    image_size=[16, 24],
    patch_size=8,
    num_channels=3,
    num_frames=4,
    tubelet_size=2,
    hidden_size=24,
    num_hidden_layers=2,
    num_attention_heads=3,
    intermediate_size=40,
    decoder_hidden_size=16,
    decoder_num_hidden_layers=2,
    decoder_num_attention_heads=2,
    decoder_intermediate_size=24,
    use_mean_pooling=False,  # the hub's pretraining checkpoints: a final encoder LayerNorm
    norm_pix_loss=True,
)
VARIANTS = {
    "rgb_norm_pix": {},
    "rgb_plain_no_qv_bias_no_final_norm": dict(norm_pix_loss=False, qv_bias=False, use_mean_pooling=True),
    "two_channels_norm_pix": dict(num_channels=2, layer_norm_eps=1e-6),  # HF uses these frames as they are
}


def hf_model(seed: int = 0, **changes):
    torch.manual_seed(seed)
    model = transformers.VideoMAEForPreTraining(transformers.VideoMAEConfig(**{**TINY, **changes}))
    # HF's init zeroes the mask token and biases and sets LayerNorms to 1 / 0: randomize every parameter.
    return randomize_torch(model, seed=seed, buffers=False)


def clips(channels: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(3, 4, 16, 24, channels)).astype(np.float32)


def hf_forward(model, video, hidden):
    pixel_values = torch.from_numpy(np.array(video)).permute(0, 1, 4, 2, 3)
    with torch.no_grad():
        out = model(pixel_values, bool_masked_pos=torch.from_numpy(np.array(hidden)))
    return out.logits.numpy(), out.loss.item()


def imported(model, mask_ratio: float = 0.5):
    config, params = convert_hf_videomae(model.state_dict(), model.config)
    config.videomae.mask_ratio = mask_ratio
    return VideoMAE.from_config(config), params


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_matches_hf_with_every_parameter_random(variant):
    changes = VARIANTS[variant]
    model = hf_model(**changes)
    method, params = imported(model)
    video, rng = clips(changes.get("num_channels", 3)), jax.random.key(4)
    batch = {"video": jnp.asarray(video)}
    pred, _, mask = method.predict(params, batch, rng)
    hidden = np.asarray(mask.mask)
    assert (hidden.reshape(3, 2, 6) == hidden.reshape(3, 2, 6)[:, :1]).all()  # a tube mask: 3 of 6 places, both slots
    logits, hf_loss = hf_forward(model, video, hidden)
    assert logits.shape == (3, 6, 2 * 8 * 8 * changes.get("num_channels", 3))
    np.testing.assert_allclose(hf_masked_predictions(pred, hidden), logits, atol=1e-4)
    loss, _ = method.loss(params, batch, rng)
    np.testing.assert_allclose(float(loss), hf_loss, rtol=1e-5)
    table = transformers.models.videomae.modeling_videomae.get_sinusoid_encoding_table(12, 16)[0].numpy()
    np.testing.assert_allclose(np.asarray(grid_positions(method.grid, 16, "sincos_flat")), table, atol=1e-6)
    # HF's mask, converted, gives the same predictions (its visible order differs; the encoder does not care).
    again = method.model.apply({"params": params}, method.patches(batch["video"]), mask_from_hf(hidden))
    np.testing.assert_allclose(np.asarray(again), np.asarray(pred), atol=1e-5)


def test_imported_params_do_not_share_memory_with_the_torch_model():
    # Before: `Tensor.numpy()` views went straight into the params, so `param.add_(1)` on the torch model
    # after the import changed mmjax's parameters too.
    model = hf_model(seed=6)
    _, params = imported(model)
    before = jax.tree.map(np.array, params)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(1.0)
    jax.tree.map(np.testing.assert_array_equal, params, before)


def test_imported_params_are_what_the_model_builds():
    model = hf_model(seed=5)
    method, params = imported(model)
    # Eps differences hide under the tolerances with random weights; check them where HF keeps them.
    assert method.encoder.layer_norm_eps == model.videomae.encoder.layer[0].layernorm_before.eps
    assert method.encoder.layer_norm_eps == model.videomae.layernorm.eps
    assert method.decoder.norm_eps == model.decoder.norm.eps
    shapes = jax.eval_shape(method.init, jax.random.key(0), {"video": jnp.zeros((1, 4, 16, 24, 3))})
    assert jax.tree.map(np.shape, params) == jax.tree.map(lambda s: s.shape, shapes)
    features = method.features(params, jnp.asarray(clips(3)))
    assert features.shape == (3, 24)
    with pytest.raises(ValueError, match="model.cls_token"):
        method.features(params, jnp.asarray(clips(3)), pool="cls")


def test_round_trip_is_exact_and_hf_loads_it_strictly(tmp_path):
    model = hf_model(seed=2)
    method, params = imported(model)
    state, hf_config = to_hf_videomae(method, params)
    reference = model.state_dict()
    assert set(state) == set(reference)
    for key, value in reference.items():
        np.testing.assert_array_equal(state[key], value.numpy(), err_msg=key)
    fresh = transformers.VideoMAEForPreTraining(transformers.VideoMAEConfig(**hf_config)).eval()
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    save_hf_videomae(method, params, tmp_path / "hf")
    loaded, info = transformers.VideoMAEForPreTraining.from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]), info
    video, hidden = clips(3, seed=6), np.asarray(method.make_mask(jax.random.key(7), 3, jnp.zeros(())).mask)
    np.testing.assert_array_equal(hf_forward(loaded.eval(), video, hidden)[0], hf_forward(model, video, hidden)[0])
    config, back = load_hf_videomae(tmp_path / "hf")
    assert config.to_dict() == method_config(model).to_dict()
    model.save_pretrained(tmp_path / "by_hf")  # HF's own files (q_bias / v_bias names) read the same
    for again in (back, load_hf_videomae(tmp_path / "by_hf")[1]):
        assert jax.tree.structure(again) == jax.tree.structure(params)
        for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(params), strict=True):
            np.testing.assert_array_equal(a, b)  # mmjax -> HF -> mmjax is bitwise


def method_config(model):
    return convert_hf_videomae(model.state_dict(), model.config)[0]


def test_a_missing_or_extra_key_is_named():
    model = hf_model()
    state = dict(model.state_dict())
    del state["decoder.head.bias"]
    state["videomae.encoder.layer.0.attention.attention.key.bias"] = torch.zeros(24)
    with pytest.raises(CheckpointMismatchError, match="decoder.head.bias") as err:
        convert_hf_videomae(state, model.config)
    assert err.value.missing == ["decoder.head.bias"]
    assert err.value.unexpected == ["videomae.encoder.layer.0.attention.attention.key.bias"]


def test_export_refuses_what_hf_cannot_hold_and_drops_a_key_bias_only_when_told():
    model = hf_model(seed=3)
    method, params = imported(model)
    path = ("token_encoder", "blocks", "block_1", "attn", "key", "bias")
    key_bias = jax.tree.map(np.array, params)
    key_bias["token_encoder"]["blocks"]["block_1"]["attn"]["key"]["bias"] = np.full((3, 8), 0.7, np.float32)
    with pytest.raises(ValueError, match="/".join(path) + r" is not zero \(max \|b\| = 0.7\)"):
        to_hf_videomae(method, key_bias)
    state, _ = to_hf_videomae(method, key_bias, drop_key_bias=True)
    video, rng = jnp.asarray(clips(3, seed=8)), jax.random.key(9)
    pred, _, mask = method.predict(key_bias, {"video": video}, rng)
    hidden = np.asarray(mask.mask)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    np.testing.assert_allclose(
        hf_masked_predictions(pred, hidden), hf_forward(model, np.asarray(video), hidden)[0], atol=1e-4
    )
    config = method_config(model)
    config.model.cls_token, config.decoder.embed_bias = True, True
    with pytest.raises(ValueError, match=r"model.cls_token=True \(HF needs False\); decoder.embed_bias=True"):
        to_hf_videomae(VideoMAE.from_config(config), params)
