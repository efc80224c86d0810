"""PatchTST against HF transformers `PatchTSTForPretraining`, weights converted by mmjax.export.hf_patchtst."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from mmjax.export.hf_patchtst import (  # noqa: E402
    POSITION_KEY,
    convert_hf_patchtst,
    patchtst_config_from_hf,
    to_hf_patchtst,
)
from mmjax.export.plan import CheckpointMismatchError  # noqa: E402
from mmjax.methods.patchtst import PatchTST  # noqa: E402
from mmjax.models.patchtst import PatchTSTModel  # noqa: E402
from mmjax.ops.series import instance_stats, normalize_series, patch_series  # noqa: E402
from tests.export_helpers import randomize_torch  # noqa: E402

# Configurations no other test uses: 3 channels, 24 steps in 6 patches of 4; and overlapping
# patches of 5 every 3 steps over 22 steps, where HF's patchifier drops the first 2 steps.
TILED = dict(context_length=24, patch_length=4, patch_stride=4)
STRIDED = dict(context_length=22, patch_length=5, patch_stride=3)
COMMON = dict(
    num_input_channels=3,
    d_model=12,
    num_attention_heads=3,
    num_hidden_layers=2,
    ffn_dim=20,
    norm_type="layernorm",
    norm_eps=1e-5,
    positional_encoding_type="random",
    random_mask_ratio=0.4,
)


def hf_model(seed: int = 0, keep_positions: bool = False, **fields):
    torch.manual_seed(seed)
    config = transformers.PatchTSTConfig(**{**COMMON, **TILED, **fields})
    model = transformers.PatchTSTForPretraining(config).eval()
    # HF's init leaves LayerNorm biases at zero and ones: randomize everything (the sincos table only if asked).
    return randomize_torch(model, seed=seed, buffers=False, skip=(POSITION_KEY,) if keep_positions else ())


def series(length: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(2, length, 3)) * rng.uniform(0.5, 4, size=(1, 1, 3)) + 2).astype(np.float32)


def hf_forward(model, x: np.ndarray, seed: int = 7) -> dict:
    """HF's own forward; its random mask and encoder output are read from `PatchTSTModel`'s output."""
    seen = {}
    hook = model.model.register_forward_hook(lambda module, args, out: seen.update(out=out))
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model(past_values=torch.from_numpy(x))
    hook.remove()
    mask = seen["out"].mask.numpy()
    return {
        "pred": out.prediction_output.numpy(),
        "loss": out.loss.item(),
        "tokens": seen["out"].last_hidden_state.numpy(),
        "hidden": mask.reshape(mask.shape[0], -1),  # [B, V * P], variate-major as mmjax
    }


def mmjax_forward(method: PatchTST, params, x: np.ndarray, hidden: np.ndarray) -> dict:
    loss, pred = method.masked_loss(params, jnp.asarray(x), jnp.asarray(hidden))
    return {"pred": np.asarray(pred), "loss": float(loss)}


@pytest.mark.parametrize("patching", [TILED, STRIDED], ids=["tiled", "strided"])
def test_matches_hf_with_every_parameter_random(patching):
    model = hf_model(**patching)
    x = series(patching["context_length"])
    want = hf_forward(model, x)
    assert 0 < want["hidden"].mean() < 1
    config, params = convert_hf_patchtst(model.state_dict(), model.config)
    method = PatchTST.from_config(config)
    assert method.patch_stride == (None if patching is TILED else 3) and method.model_options.final_norm is False
    got = mmjax_forward(method, params, x, want["hidden"])
    np.testing.assert_allclose(got["pred"], want["pred"], atol=1e-4)
    np.testing.assert_allclose(got["loss"], want["loss"], rtol=1e-5)
    # The encoder output too (HF's has no final norm).
    mean, std = instance_stats(jnp.asarray(x))
    patches = patch_series(normalize_series(jnp.asarray(x), mean, std), method.patch_len, method.patch_stride)
    tokens = method.model.apply({"params": params}, patches, jnp.asarray(want["hidden"]), method=PatchTSTModel.encode)
    np.testing.assert_allclose(np.asarray(tokens), want["tokens"], atol=1e-4)


def test_mmjax_masks_hide_as_many_patches_per_channel_as_hf():
    model = hf_model()
    want = hf_forward(model, series(24))
    method = PatchTST.from_config(convert_hf_patchtst(model.state_dict(), model.config)[0])
    hidden = np.asarray(method.make_mask(jax.random.key(0), 2, 3)).reshape(2, 3, -1)
    np.testing.assert_array_equal(hidden.sum(-1), want["hidden"].reshape(2, 3, -1).sum(-1))


def test_exports_back_exactly_to_a_model_hf_loads_strictly():
    model = hf_model(seed=2, **STRIDED)
    x = series(22, seed=3)
    config, params = convert_hf_patchtst(model.state_dict(), model.config)
    state, hf_config = to_hf_patchtst(PatchTST.from_config(config), params, num_input_channels=3)
    assert set(state) == set(model.state_dict())
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(state[key], value.numpy(), err_msg=key)  # the round trip is exact
    again = transformers.PatchTSTForPretraining(transformers.PatchTSTConfig(**hf_config)).eval()
    again.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    first, second = hf_forward(model, x), hf_forward(again, x)
    np.testing.assert_array_equal(first["hidden"], second["hidden"])
    np.testing.assert_allclose(second["pred"], first["pred"], atol=1e-6)
    np.testing.assert_allclose(second["loss"], first["loss"], rtol=1e-6)


def test_hf_sincos_table_becomes_mmjax_sincos_and_goes_back():
    model = hf_model(seed=4, keep_positions=True, positional_encoding_type="sincos")
    x = series(24, seed=5)
    want = hf_forward(model, x)
    config, params = convert_hf_patchtst(model.state_dict(), model.config)
    assert config.model.positions == "sincos" and "pos_embedding" not in params
    method = PatchTST.from_config(config)
    got = mmjax_forward(method, params, x, want["hidden"])
    np.testing.assert_allclose(got["pred"], want["pred"], atol=1e-4)
    np.testing.assert_allclose(got["loss"], want["loss"], rtol=1e-5)
    state, hf_config = to_hf_patchtst(method, params, num_input_channels=3)
    assert hf_config["positional_encoding_type"] == "sincos"
    np.testing.assert_allclose(state[POSITION_KEY], model.state_dict()[POSITION_KEY].numpy(), atol=1e-6)
    again = transformers.PatchTSTForPretraining(transformers.PatchTSTConfig(**hf_config)).eval()
    again.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    np.testing.assert_allclose(hf_forward(again, x)["pred"], want["pred"], atol=1e-5)
    # A table that is not HF's sincos (here a random one) is kept as a learned parameter.
    changed = hf_model(seed=4, positional_encoding_type="sincos")
    config, params = convert_hf_patchtst(changed.state_dict(), changed.config)
    assert config.model.positions == "learned"
    np.testing.assert_array_equal(params["pos_embedding"], changed.state_dict()[POSITION_KEY].numpy())


def test_missing_unexpected_and_misshaped_keys_are_named():
    model = hf_model()
    state = dict(model.state_dict())
    gone = "model.encoder.layers.1.ff.3.bias"
    del state[gone]
    with pytest.raises(CheckpointMismatchError, match=gone) as err:
        convert_hf_patchtst(state, model.config)
    assert err.value.missing == [gone]
    state = {**model.state_dict(), "head.extra": torch.zeros(2), "head.linear.bias": torch.zeros(5)}
    with pytest.raises(CheckpointMismatchError) as err:
        convert_hf_patchtst(state, model.config)
    assert err.value.unexpected == ["head.extra"] and err.value.mismatched == ["head.linear.bias (5,) != (4,)"]


@pytest.mark.parametrize(
    "field, value",
    [
        ("norm_type", "batchnorm"),
        ("pre_norm", False),
        ("use_cls_token", True),
        ("channel_attention", True),
        ("share_embedding", False),
        ("scaling", "mean"),
        ("scaling", True),
        ("activation_function", "relu"),
        ("bias", False),
        ("mask_type", "forecast"),
        ("channel_consistent_masking", True),
        ("mask_value", 1),
    ],
)
def test_hf_options_mmjax_lacks_are_refused_naming_the_field(field, value):
    fields = {**COMMON, **TILED, field: value}
    with pytest.raises(ValueError, match=f"HF PatchTST {field}={value!r} is not supported") as err:
        patchtst_config_from_hf(transformers.PatchTSTConfig(**fields))
    assert "\n" not in str(err.value)


def test_mmjax_options_hf_lacks_are_refused():
    model = hf_model()
    config, params = convert_hf_patchtst(model.state_dict(), model.config)
    config.model.final_norm = True
    with pytest.raises(ValueError, match="model.final_norm=True"):
        to_hf_patchtst(PatchTST.from_config(config), params, 3)
    config.model.final_norm = False
    config.mask.kind = "random"
    with pytest.raises(ValueError, match="mask.kind='random'"):
        to_hf_patchtst(PatchTST.from_config(config), params, 3)
