"""SimMIM against HF transformers `ViTForMaskedImageModeling`, weights converted by mmjax.export.hf_simmim."""

import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from mmjax.export.hf_simmim import convert_hf_simmim, to_hf_simmim  # noqa: E402
from mmjax.losses import masked_loss  # noqa: E402
from mmjax.methods.simmim import SimMIM  # noqa: E402
from mmjax.ops.patches import patchify  # noqa: E402
from mmjax.targets import make_target  # noqa: E402

# A configuration no other test uses: 24 px, 4 px patches (a 6 x 6 grid), 2 channels.
TINY = dict(
    image_size=24,
    patch_size=4,
    encoder_stride=4,
    num_channels=2,
    hidden_size=24,
    num_hidden_layers=2,
    num_attention_heads=3,
    intermediate_size=40,
    layer_norm_eps=1e-6,
)


def hf_model(seed: int = 0):
    torch.manual_seed(seed)
    model = transformers.ViTForMaskedImageModeling(transformers.ViTConfig(**TINY)).eval()
    # HF's init leaves the position table, cls and mask tokens at zero: randomize everything.
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn_like(param) * 0.5)
    return model


def inputs(seed: int = 1):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(3, 24, 24, 2)).astype(np.float32)
    hidden = rng.random((3, 36)) < 0.6
    return images, hidden


def hf_forward(model, images, hidden):
    with torch.no_grad():
        out = model(torch.from_numpy(images).permute(0, 3, 1, 2), bool_masked_pos=torch.from_numpy(hidden))
    return out.reconstruction.permute(0, 2, 3, 1).numpy(), out.loss.item()


def test_matches_hf_with_every_parameter_random():
    model = hf_model()
    images, hidden = inputs()
    reconstruction, hf_loss = hf_forward(model, images, hidden)
    config, params = convert_hf_simmim(model.state_dict(), model.config)
    method = SimMIM.from_config(config)
    pred = method.model.apply({"params": params}, jnp.asarray(images), jnp.asarray(hidden))
    # The head's patches are HF's reconstruction cut into patches in mmjax's order.
    np.testing.assert_allclose(np.asarray(pred), np.asarray(patchify(jnp.asarray(reconstruction), 4)), atol=1e-4)
    target = make_target(method.target_part, jnp.asarray(images), method.model_config.patch_size)
    loss = masked_loss(method.loss_part, pred, target, jnp.asarray(hidden))
    np.testing.assert_allclose(float(loss), hf_loss, rtol=1e-5)


def test_exports_back_to_a_model_hf_loads_and_computes_the_same():
    model = hf_model(seed=2)
    images, hidden = inputs(seed=3)
    config, params = convert_hf_simmim(model.state_dict(), model.config)
    state, hf_config = to_hf_simmim(SimMIM.from_config(config), params)
    assert set(state) == set(model.state_dict())
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(state[key], value.numpy(), err_msg=key)  # the round trip is exact
    again = transformers.ViTForMaskedImageModeling(transformers.ViTConfig(**hf_config)).eval()
    again.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    np.testing.assert_allclose(hf_forward(again, images, hidden)[0], hf_forward(model, images, hidden)[0], atol=1e-6)


def test_a_head_or_domain_hf_has_not_is_refused():
    model = hf_model()
    config, params = convert_hf_simmim(model.state_dict(), model.config)
    config.simmim.domain = "frequency"
    with pytest.raises(ValueError, match="simmim.domain='frequency'"):
        to_hf_simmim(SimMIM.from_config(config), params)
    with pytest.raises(ValueError, match="encoder_stride=8 must equal patch_size=4"):
        convert_hf_simmim(model.state_dict(), {**model.config.to_dict(), "encoder_stride": 8})
