"""HF ViTMAE, ViT and BERT checkpoints through files, every parameter random.

Directories come from the installed transformers' `save_pretrained` (5.x writes 4.x-style names
to disk, and the ViTMAE decoder as `decoder.decoder_encoder.layer.{i}.`), or are written here
by hand with the names of transformers 4.x hub files and of 5.x in memory. mmjax imports each,
matches transformers' forward, and the ViTMAE and ViT round trips through files are bitwise.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

from mmjax.export import load_hf_bert, load_hf_vit, load_hf_vitmae, save_hf_vit, save_hf_vitmae  # noqa: E402
from mmjax.methods.mae import MAE  # noqa: E402
from mmjax.models.bert import BertMLM  # noqa: E402
from mmjax.models.vit import ViTEncoder  # noqa: E402
from tests.export_helpers import HF_VITMAE_TINY, images_and_noise, randomize_torch  # noqa: E402

VIT_TINY = dict(
    image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
)
BERT_TINY = dict(
    vocab_size=60,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=48,
    max_position_embeddings=16,
    type_vocab_size=2,
)

# transformers 4.x names inside a ViT / ViTMAE block, spelled out independently of mmjax.
V4_BLOCK = {
    "attention.q_proj": "attention.attention.query",
    "attention.k_proj": "attention.attention.key",
    "attention.v_proj": "attention.attention.value",
    "attention.o_proj": "attention.output.dense",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
}
_BLOCK_KEY = re.compile(r"((?:.*\.)?)(layers|decoder_layers)\.(\d+)\.(.+)\.(weight|bias)")


def v4_name(key: str) -> str:
    """A 5.x in-memory ViT / ViTMAE key as a 4.x hub file names it."""
    match = _BLOCK_KEY.fullmatch(key)
    if not match:
        return key
    prefix, stack, i, inner, kind = match.groups()
    stack = "encoder.layer" if stack == "layers" else "decoder_layers"
    return f"{prefix}{stack}.{i}.{V4_BLOCK.get(inner, inner)}.{kind}"


def write_checkpoint(directory, model, state):
    """`config.json` of `model` and a `model.safetensors` holding exactly `state`."""
    model.config.save_pretrained(directory)
    tensors = {key: value.detach().clone().contiguous() for key, value in state.items()}
    safetensors_torch.save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    return directory


def file_keys(directory):
    with safetensors_torch.safe_open(str(directory / "model.safetensors"), "pt") as f:
        return set(f.keys())


def assert_same_params(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    jax.tree.map(np.testing.assert_array_equal, a, b)


def assert_same_state(a, b):
    """Two torch models (or state dicts) hold bitwise-equal tensors under the same keys."""
    a = a.state_dict() if hasattr(a, "state_dict") else a
    b = b.state_dict() if hasattr(b, "state_dict") else b
    assert set(a) == set(b)
    different = [key for key in a if not torch.equal(a[key], b[key])]
    assert not different, different


def reload_cleanly(cls, directory, **kwargs):
    """`cls.from_pretrained(directory)`, asserting transformers found every key and no others."""
    model, info = cls.from_pretrained(directory, output_loading_info=True, **kwargs)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    return model.eval()


# ViTMAE


@pytest.fixture(scope="module")
def hf_vitmae():
    config = transformers.ViTMAEConfig(**HF_VITMAE_TINY, mask_ratio=0.75, norm_pix_loss=True)
    return randomize_torch(transformers.ViTMAEForPreTraining(config), seed=0)


@pytest.fixture(scope="module")
def vitmae_dir(hf_vitmae, tmp_path_factory):
    directory = tmp_path_factory.mktemp("vitmae") / "hf"
    hf_vitmae.save_pretrained(directory)
    return directory


def test_vitmae_save_pretrained_imports_and_matches_transformers(hf_vitmae, vitmae_dir):
    assert "decoder.decoder_encoder.layer.0.attention.attention.query.weight" in file_keys(vitmae_dir)
    config, params = load_hf_vitmae(vitmae_dir)
    assert config.model.posemb == "learned" and config.decoder.posemb == "learned"
    assert config.model.layer_norm_eps == hf_vitmae.config.layer_norm_eps
    images, noise = images_and_noise()
    with torch.no_grad():
        hf = hf_vitmae(torch.from_numpy(images).permute(0, 3, 1, 2), noise=torch.from_numpy(noise))
    mae = MAE.from_config(config)
    batch, noise_j = {"image": jnp.asarray(images)}, jnp.asarray(noise)
    loss, _ = mae.loss(params, batch, jax.random.key(0), noise=noise_j)
    pred, mask = mae.predict(params, batch, jax.random.key(0), noise=noise_j)
    np.testing.assert_array_equal(np.asarray(mask.mask, np.float32), hf.mask.numpy())
    np.testing.assert_allclose(np.asarray(pred), hf.logits.numpy(), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(float(loss), hf.loss.item(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("naming", ["4.x", "5.x"])
def test_vitmae_files_named_by_either_version_import_to_the_same_params(hf_vitmae, vitmae_dir, tmp_path, naming):
    state = hf_vitmae.state_dict()
    if naming == "4.x":
        state = {v4_name(key): value for key, value in state.items()}
        assert "vit.encoder.layer.1.attention.output.dense.weight" in state
        assert "decoder.decoder_layers.1.intermediate.dense.bias" in state
    directory = write_checkpoint(tmp_path / naming, hf_vitmae, state)
    # transformers reads the hand-written file without a missing or unexpected key: its names are real.
    assert_same_state(reload_cleanly(transformers.ViTMAEForPreTraining, directory), hf_vitmae)
    _, expected = load_hf_vitmae(vitmae_dir)
    _, params = load_hf_vitmae(directory)
    assert_same_params(params, expected)


def test_vitmae_round_trip_through_files_is_bitwise(hf_vitmae, vitmae_dir, tmp_path):
    config, params = load_hf_vitmae(vitmae_dir)
    out = save_hf_vitmae(MAE.from_config(config), params, tmp_path / "back")
    model = reload_cleanly(transformers.ViTMAEForPreTraining, out)
    assert_same_state(model, hf_vitmae)
    for field in (*HF_VITMAE_TINY, "layer_norm_eps", "qkv_bias", "mask_ratio", "norm_pix_loss"):
        assert getattr(model.config, field) == getattr(hf_vitmae.config, field), field


# ViT


def hf_vit(cls, seed=0, **kwargs):
    return randomize_torch(cls(transformers.ViTConfig(**VIT_TINY), **kwargs), seed=seed)


def vit_tokens(model, images):
    encoder = model.vit if hasattr(model, "vit") else model
    with torch.no_grad():
        return encoder(torch.from_numpy(images).permute(0, 3, 1, 2)).last_hidden_state.numpy()


@pytest.mark.parametrize("cls", ["ViTModel", "ViTForImageClassification"])
def test_vit_save_pretrained_imports_and_matches_transformers(tmp_path, cls):
    model = hf_vit(getattr(transformers, cls), seed=1)  # ViTModel keeps its pooler; dropped on import
    model.save_pretrained(tmp_path / "vit")
    config, params = load_hf_vit(tmp_path / "vit")
    assert config.posemb == "learned" and config.layer_norm_eps == model.config.layer_norm_eps
    images, _ = images_and_noise(seed=2)
    expected = vit_tokens(model, images)
    got = np.asarray(ViTEncoder(config).apply({"params": params}, images)[0])
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("naming", ["4.x", "5.x"])
def test_vit_files_named_by_either_version_import_to_the_same_params(tmp_path, naming):
    model = hf_vit(transformers.ViTModel, seed=3)
    model.save_pretrained(tmp_path / "saved")
    state = model.state_dict()
    if naming == "4.x":
        state = {v4_name(key): value for key, value in state.items()}
        assert "encoder.layer.0.attention.attention.key.bias" in state and "pooler.dense.weight" in state
    directory = write_checkpoint(tmp_path / naming, model, state)
    assert_same_state(reload_cleanly(transformers.ViTModel, directory), model)
    _, expected = load_hf_vit(tmp_path / "saved")
    _, params = load_hf_vit(directory)
    assert_same_params(params, expected)


def test_vit_round_trip_through_files_is_bitwise(tmp_path):
    model = hf_vit(transformers.ViTModel, seed=4, add_pooling_layer=False)
    model.save_pretrained(tmp_path / "saved")
    config, params = load_hf_vit(tmp_path / "saved")
    out = save_hf_vit(config, params, tmp_path / "back")
    back = reload_cleanly(transformers.ViTModel, out, add_pooling_layer=False)
    assert_same_state(back, model)
    for field in (*VIT_TINY, "layer_norm_eps", "qkv_bias", "num_channels"):
        assert getattr(back.config, field) == getattr(model.config, field), field


# BERT


@pytest.fixture(scope="module")
def hf_bert():
    return randomize_torch(transformers.BertForMaskedLM(transformers.BertConfig(**BERT_TINY)), seed=5)


@pytest.fixture(scope="module")
def bert_dir(hf_bert, tmp_path_factory):
    directory = tmp_path_factory.mktemp("bert") / "hf"
    hf_bert.save_pretrained(directory)
    return directory


def bert_inputs(batch=3, length=12, seed=6):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, BERT_TINY["vocab_size"], size=(batch, length))
    attention_mask = (np.arange(length)[None] < np.array([length, 9, 5])[:, None]).astype(np.int64)
    token_types = np.where(np.arange(length)[None] >= 4, 1, 0) * attention_mask
    return np.where(attention_mask > 0, ids, 0), attention_mask, token_types


def test_bert_save_pretrained_imports_and_matches_transformers(hf_bert, bert_dir):
    assert "cls.predictions.decoder.weight" not in file_keys(bert_dir)  # tied: 5.x leaves it out
    config, params = load_hf_bert(bert_dir)
    ids, attention_mask, token_types = bert_inputs()
    with torch.no_grad():
        hf = hf_bert(
            input_ids=torch.tensor(ids),
            attention_mask=torch.tensor(attention_mask),
            token_type_ids=torch.tensor(token_types),
        ).logits.numpy()
    # Padding is segment 0, real tokens segment 1: real tokens never see padded keys, as in HF.
    logits = np.asarray(BertMLM(config).apply({"params": params}, ids, attention_mask, None, token_types))
    real = attention_mask > 0
    np.testing.assert_allclose(logits[real], hf[real], atol=1e-5, rtol=1e-5)
    assert_same_params(params, load_hf_bert(hf_bert)[1])


def test_bert_legacy_named_file_imports_to_the_same_params(hf_bert, bert_dir, tmp_path):
    """A 4.x-era `BertForPreTraining` file: LayerNorm `gamma` / `beta`, the `position_ids` buffer,
    the tied decoder written out, a pooler and a next-sentence head."""
    d = BERT_TINY["hidden_size"]
    state = {}
    for key, value in hf_bert.state_dict().items():
        key = re.sub(r"\.LayerNorm\.weight$", ".LayerNorm.gamma", key)
        state[re.sub(r"\.LayerNorm\.bias$", ".LayerNorm.beta", key)] = value
    assert "bert.embeddings.LayerNorm.gamma" in state and "cls.predictions.decoder.weight" in state
    state["bert.embeddings.position_ids"] = torch.arange(BERT_TINY["max_position_embeddings"])[None]
    state.update(
        {
            "bert.pooler.dense.weight": torch.ones(d, d),
            "bert.pooler.dense.bias": torch.ones(d),
            "cls.seq_relationship.weight": torch.ones(2, d),
            "cls.seq_relationship.bias": torch.ones(2),
        }
    )
    directory = write_checkpoint(tmp_path / "legacy", hf_bert, state)
    model = transformers.BertForMaskedLM.from_pretrained(directory)
    assert_same_state(model, hf_bert)  # transformers reads these names as the same model
    _, expected = load_hf_bert(bert_dir)
    config, params = load_hf_bert(directory)
    assert config == load_hf_bert(bert_dir)[0]
    assert_same_params(params, expected)
