"""HF ViT and timm-named ViT weights into an mmjax ViTEncoder, every parameter random; resolution changes."""

import re

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from mmjax.export import CheckpointMismatchError, convert_hf_vit, convert_timm_vit, resize_encoder  # noqa: E402
from mmjax.models.vit import ViTEncoder  # noqa: E402

TINY = dict(
    image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
)


@pytest.fixture(scope="module")
def hf_vit():
    config = transformers.ViTConfig(**TINY)  # layer_norm_eps stays HF's 1e-12
    torch.manual_seed(0)
    model = transformers.ViTModel(config).eval()
    with torch.no_grad():  # HF init leaves the position table and cls token at zero: randomise all
        for param in model.parameters():
            param.copy_(torch.randn_like(param) * 0.5)
    return model


def hf_tokens(model, images, interpolate=False):
    with torch.no_grad():
        out = model(torch.from_numpy(images).permute(0, 3, 1, 2), interpolate_pos_encoding=interpolate)
    return out.last_hidden_state.numpy()


def mmjax_tokens(config, params, images):
    return np.asarray(ViTEncoder(config).apply({"params": params}, images)[0])


def images(height=32, width=32, batch=2, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, height, width, 3)).astype(np.float32)


def test_hf_vit_imports_to_the_same_features(hf_vit):
    config, params = convert_hf_vit(hf_vit.state_dict(), hf_vit.config)
    assert config.posemb == "learned" and config.layer_norm_eps == 1e-12
    x = images()
    np.testing.assert_allclose(mmjax_tokens(config, params, x), hf_tokens(hf_vit, x), atol=1e-5, rtol=1e-5)


def to_v4(key):
    key = re.sub(r"^layers\.(\d+)\.", r"encoder.layer.\1.", key)
    for new, old in (
        ("attention.q_proj", "attention.attention.query"),
        ("attention.k_proj", "attention.attention.key"),
        ("attention.v_proj", "attention.attention.value"),
        ("attention.o_proj", "attention.output.dense"),
        ("mlp.fc1", "intermediate.dense"),
        ("mlp.fc2", "output.dense"),
    ):
        key = key.replace(f".{new}.", f".{old}.")
    return key


def test_hf_vit_4x_names_and_classifier_prefix_give_the_same_params(hf_vit):
    state = hf_vit.state_dict()
    v4 = {"vit." + to_v4(k): v for k, v in state.items()}
    v4["classifier.weight"] = torch.zeros(10, 32)
    assert "vit.encoder.layer.1.output.dense.weight" in v4
    _, a = convert_hf_vit(state, hf_vit.config)
    _, b = convert_hf_vit(v4, hf_vit.config)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_equal(a[key], b[key])


def timm_state_dict(model):
    """The HF ViT's weights under timm's names, with q, k, v fused into one `qkv` Linear."""
    s = {k: v.clone() for k, v in model.state_dict().items()}
    out = {
        "cls_token": s["embeddings.cls_token"],
        "pos_embed": s["embeddings.position_embeddings"],
        "patch_embed.proj.weight": s["embeddings.patch_embeddings.projection.weight"],
        "patch_embed.proj.bias": s["embeddings.patch_embeddings.projection.bias"],
        "norm.weight": s["layernorm.weight"],
        "norm.bias": s["layernorm.bias"],
        "head.weight": torch.zeros(10, 32),  # a classifier head, ignored on import
        "head.bias": torch.zeros(10),
    }
    for i in range(model.config.num_hidden_layers):
        hf, timm = f"layers.{i}", f"blocks.{i}"
        for part in ("weight", "bias"):
            out[f"{timm}.attn.qkv.{part}"] = torch.cat(
                [s[f"{hf}.attention.{p}_proj.{part}"] for p in ("q", "k", "v")], dim=0
            )
            out[f"{timm}.attn.proj.{part}"] = s[f"{hf}.attention.o_proj.{part}"]
            out[f"{timm}.norm1.{part}"] = s[f"{hf}.layernorm_before.{part}"]
            out[f"{timm}.norm2.{part}"] = s[f"{hf}.layernorm_after.{part}"]
            out[f"{timm}.mlp.fc1.{part}"] = s[f"{hf}.mlp.fc1.{part}"]
            out[f"{timm}.mlp.fc2.{part}"] = s[f"{hf}.mlp.fc2.{part}"]
    return out


def test_timm_named_state_dict_imports_to_the_hf_features(hf_vit):
    config, params = convert_timm_vit(timm_state_dict(hf_vit), heads=4, layer_norm_eps=1e-12)
    assert (config.width, config.depth, config.mlp_dim, config.image_size) == (32, 2, 64, (32, 32))
    x = images(seed=3)
    np.testing.assert_allclose(mmjax_tokens(config, params, x), hf_tokens(hf_vit, x), atol=1e-5, rtol=1e-5)


def test_missing_and_misshaped_keys_are_listed(hf_vit):
    timm = timm_state_dict(hf_vit)
    del timm["blocks.1.norm1.bias"]
    timm["blocks.0.attn.qkv.weight"] = torch.zeros(64, 32)
    timm["blocks.0.attn.extra"] = torch.zeros(2)
    with pytest.raises(CheckpointMismatchError) as err:
        convert_timm_vit(timm, heads=4)
    assert err.value.missing == ["blocks.1.norm1.bias"]
    assert err.value.unexpected == ["blocks.0.attn.extra"]
    assert err.value.mismatched == ["blocks.0.attn.qkv.weight (64, 32) != (96, 32)"]
    message = str(err.value)
    assert "blocks.1.norm1.bias" in message and "blocks.0.attn.qkv.weight" in message

    hf = dict(hf_vit.state_dict())
    hf["embeddings.position_embeddings"] = torch.zeros(1, 5, 32)
    with pytest.raises(CheckpointMismatchError, match=r"embeddings.position_embeddings \(1, 5, 32\) != \(1, 17, 32\)"):
        convert_hf_vit(hf, hf_vit.config)


@pytest.mark.parametrize("height, width", [(48, 64), (24, 24)])
def test_resized_position_table_matches_hf_interpolate_pos_encoding(hf_vit, height, width):
    config, params = convert_hf_vit(hf_vit.state_dict(), hf_vit.config)
    config, params = resize_encoder(config, params, (height, width))
    assert params["pos_embedding"].shape == (1, 1 + (height // 8) * (width // 8), 32)
    x = images(height, width, seed=5)
    got = mmjax_tokens(config, params, x)
    np.testing.assert_allclose(got, hf_tokens(hf_vit, x, interpolate=True), atol=1e-5, rtol=1e-5)


def test_resize_bicubic_matches_torch_interpolate_up_and_down():
    from mmjax.ops.posemb import resize_bicubic

    table = np.random.default_rng(0).normal(size=(7, 5, 6))
    for size in [(3, 11), (14, 4), (7, 5)]:
        expected = torch.nn.functional.interpolate(
            torch.from_numpy(table).permute(2, 0, 1)[None], size=size, mode="bicubic", align_corners=False
        )[0].permute(1, 2, 0)
        np.testing.assert_allclose(resize_bicubic(table, size), expected.numpy(), atol=1e-12)


def test_resize_sincos_encoder_recomputes_its_table():
    from mmjax.models.config import ViTConfig

    config = ViTConfig(image_size=32, patch_size=8, width=32, depth=1, heads=4, mlp_dim=64)
    params = ViTEncoder(config).init(jax.random.key(0), images())["params"]
    new_config, new_params = resize_encoder(config, params, 48)
    assert new_config.grid == (6, 6) and "pos_embedding" not in new_params
    assert mmjax_tokens(new_config, new_params, images(48, 48)).shape == (2, 37, 32)


def test_resize_refuses_relative_position_tables():
    from mmjax.models.config import ViTConfig

    config = ViTConfig(image_size=32, patch_size=8, width=32, depth=1, heads=4, mlp_dim=64, rel_pos_bias="shared")
    with pytest.raises(ValueError, match="model.rel_pos_bias='shared'"):
        resize_encoder(config, {}, 48)
