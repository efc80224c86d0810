"""mmjax MAE -> HF `ViTMAEForPreTraining` directory -> transformers and back, every parameter random."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from mmjax.export import load_hf_vitmae, save_hf_vitmae  # noqa: E402
from mmjax.methods.mae import MAE  # noqa: E402
from tests.export_helpers import images_and_noise, random_params, tiny_mae  # noqa: E402


@pytest.mark.parametrize("posemb, norm_pix_loss", [("learned", False), ("sincos2d", True)])
def test_hf_export_round_trips_bitwise_and_matches_transformers(tmp_path, posemb, norm_pix_loss):
    mae = tiny_mae(posemb, norm_pix_loss)
    params = random_params(mae)
    out = save_hf_vitmae(mae, params, tmp_path / "hf")

    # mmjax -> HF -> mmjax: the same config and bitwise the same parameters.
    config, back = load_hf_vitmae(out)
    assert config.model.posemb == posemb and config.decoder.posemb == posemb
    assert config.model.layer_norm_eps == mae.model_config.layer_norm_eps
    assert jax.tree.structure(back) == jax.tree.structure(params)
    jax.tree.map(np.testing.assert_array_equal, back, params)

    # transformers loads the directory and computes the same loss and predictions for the same noise.
    model = transformers.ViTMAEForPreTraining.from_pretrained(out).eval()
    images, noise = images_and_noise()
    with torch.no_grad():
        hf = model(torch.from_numpy(images).permute(0, 3, 1, 2), noise=torch.from_numpy(noise))
    batch, noise_j = {"image": jnp.asarray(images)}, jnp.asarray(noise)
    loss, _ = mae.loss(params, batch, jax.random.key(0), noise=noise_j)
    pred, mask = mae.predict(params, batch, jax.random.key(0), noise=noise_j)
    np.testing.assert_array_equal(np.asarray(mask.mask, np.float32), hf.mask.numpy())
    np.testing.assert_allclose(np.asarray(pred), hf.logits.numpy(), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(float(loss), hf.loss.item(), atol=1e-5, rtol=1e-5)


def test_hf_export_refuses_non_square_images(tmp_path):
    mae = tiny_mae()
    wide = MAE(dataclasses.replace(mae.model_config, image_size=(32, 64)), mae.decoder_config)
    with pytest.raises(ValueError, match="square model.image_size"):
        save_hf_vitmae(wide, {}, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


@pytest.mark.parametrize("posemb", ["learned", "sincos2d"])
def test_encoder_exports_as_hf_vit_model_with_the_same_features(tmp_path, posemb):
    from mmjax.export import encoder_features, load_hf_vit, save_hf_vit

    mae = tiny_mae(posemb)
    params = random_params(mae, seed=7)["encoder"]
    out = save_hf_vit(mae.model_config, params, tmp_path / "vit")
    model = transformers.ViTModel.from_pretrained(out, add_pooling_layer=False).eval()
    images, _ = images_and_noise(seed=8)
    with torch.no_grad():
        hf = model(torch.from_numpy(images).permute(0, 3, 1, 2)).last_hidden_state.numpy()
    expected = np.asarray(encoder_features(mae.model_config, params, images, "tokens"))
    np.testing.assert_allclose(hf, expected, atol=1e-5, rtol=1e-5)
    config, back = load_hf_vit(out)
    assert config.layer_norm_eps == mae.model_config.layer_norm_eps
    if posemb == "learned":  # a sincos encoder comes back with its table as a learned parameter
        jax.tree.map(np.testing.assert_array_equal, back, params)
