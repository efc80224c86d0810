"""HF transformers `VideoMAEForPreTraining` weights and config <-> an mmjax VideoMAE, both ways.

HF's VideoMAE is mmjax's grid MAE with the `model` / `decoder` knobs that `videomae_config_from_hf`
sets: no cls token, VideoMAE's fixed 1-D sinusoid table over the flattened tubelet index in the
encoder and the decoder (`posemb="sincos_flat"`, no parameter), HF's `layer_norm_eps` in every
block, a final encoder LayerNorm only when `use_mean_pooling` is False, an encoder-to-decoder
projection without bias, and a decoder LayerNorm with torch's default eps 1e-5. The loss is
VideoMAE's: targets from the frames un-normalized with the ImageNet mean / std (RGB only, as HF),
each channel of a tubelet normalized with the unbiased std (`norm_pix_style="videomae"`).

Differences that need no knob: HF's attention has query and value biases but no key bias; a key
bias adds the same `q . b` to every logit of a query, so softmax ignores it, and import fills it
with zeros (export refuses a non-zero one unless told to drop it). HF's decoder runs on
`[visible, hidden]` tokens and predicts the hidden ones only, in increasing position order; the
transformer is permutation-equivariant, so mmjax's predictions at those positions are HF's
logits (`hf_masked_predictions`). The Conv3d tubelet embedding's weight `[D, C, t, h, w]` is the
Dense kernel over `tubeletify`'s (frame, row, column, channel) vectors.

Key names: transformers 5.x in memory has `attention.attention.query.bias` / `value.bias`; hub
files and what 5.x `save_pretrained` writes have `attention.attention.q_bias` / `v_bias`. Both
are read; `to_hf_videomae` returns the first, `save_hf_videomae` writes the second.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.config import section_config
from mmjax.data.presets import IMAGENET_MEAN, IMAGENET_STD, VideoData
from mmjax.export.atomic import atomic_directory
from mmjax.export.hf_vitmae import hf_config_dict
from mmjax.export.plan import (
    BlockNames,
    Entry,
    Plan,
    PlanBuilder,
    add_block,
    apply_plan,
    check_plan,
    get_path,
    invert_plan,
    to_numpy,
)
from mmjax.masking.mask import Mask, mask_from_ranking
from mmjax.methods.videomae import VideoMAE, default_config

VIDEOMAE_BLOCK = BlockNames(
    qkv=("attention.attention.query", "attention.attention.key", "attention.attention.value"),
    out="attention.output.dense",
    norm1="layernorm_before",
    norm2="layernorm_after",
    fc1="intermediate.dense",
    fc2="output.dense",
)
# HF's `VideoMAEDecoder.norm` is a bare `nn.LayerNorm`: torch's default eps, not `layer_norm_eps`.
HF_DECODER_NORM_EPS = 1e-5
# (5.x in-memory suffix, on-disk suffix) of the query and value biases.
_BIAS_NAMES = (
    (".attention.attention.query.bias", ".attention.attention.q_bias"),
    (".attention.attention.value.bias", ".attention.attention.v_bias"),
)


def _swap_suffix(key: str, pairs: tuple[tuple[str, str], ...]) -> str:
    for old, new in pairs:
        if key.endswith(old):
            return key[: -len(old)] + new
    return key


def normalize_key(key: str) -> str:
    """A VideoMAE key as hub files / `save_pretrained` write it (`q_bias`) -> the 5.x in-memory name (`query.bias`)."""
    return _swap_suffix(key, tuple((disk, memory) for memory, disk in _BIAS_NAMES))


def _pair(value: Any, field: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(int(v) for v in value)
    if len(pair) != 2:
        raise ValueError(f"HF VideoMAE {field}={value!r}: expected an int or a (height, width) pair")
    return pair


def videomae_config_from_hf(hf_config: Any) -> ml_collections.ConfigDict:
    """mmjax VideoMAE method config (with its `data` section) from an HF `VideoMAEConfig` (object or dict)."""
    c = hf_config_dict(hf_config)
    if c.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"hidden_act={c['hidden_act']!r} is not supported; mmjax ViTs use exact 'gelu'")
    patch = _pair(c.get("patch_size", 16), "patch_size")
    if patch[0] != patch[1]:
        raise ValueError(f"HF VideoMAE patch_size={c['patch_size']!r}: its decoder needs one square patch size")
    channels = c.get("num_channels", 3)
    config = default_config()
    config.model.update(
        width=c["hidden_size"],
        depth=c["num_hidden_layers"],
        heads=c["num_attention_heads"],
        mlp_dim=c["intermediate_size"],
        cls_token=False,
        posemb="sincos_flat",
        layer_norm_eps=c.get("layer_norm_eps", 1e-12),
        qkv_bias=c.get("qv_bias", c.get("qkv_bias", True)),
        final_norm=not c.get("use_mean_pooling", True),
    )
    config.decoder.update(
        width=c["decoder_hidden_size"],
        depth=c["decoder_num_hidden_layers"],
        heads=c["decoder_num_attention_heads"],
        mlp_dim=c["decoder_intermediate_size"],
        posemb="sincos_flat",
        embed_bias=False,
        norm_eps=HF_DECODER_NORM_EPS,
    )
    config.videomae.update(
        tubelet_size=(c.get("tubelet_size", 2), *patch),
        norm_pix_loss=c.get("norm_pix_loss", True),
        norm_pix_style="videomae",
        unnormalize_target=channels == 3,  # HF un-normalizes RGB frames with the ImageNet statistics only
    )
    stats = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD} if channels == 3 else {}
    config.data = section_config(
        VideoData,
        frames=c.get("num_frames", 16),
        image_size=_pair(c.get("image_size", 224), "image_size"),
        channels=channels,
        **stats,
    )
    return config


def _plan(method: VideoMAE) -> tuple[Plan, Plan]:
    """5.x key -> entry for the whole `VideoMAEForPreTraining`, and the entries of the key biases HF lacks."""
    enc, dec = method.encoder, method.decoder
    d, dd = enc.width, dec.width
    t, h, w = method.tubelet_size
    c = method.channels
    builder = PlanBuilder()
    builder.plan["videomae.embeddings.patch_embeddings.projection.weight"] = Entry(
        (("patch_embed", "kernel"),),
        (d, c, t, h, w),
        lambda x: (np.transpose(x, (2, 3, 4, 1, 0)).reshape(-1, d),),
        lambda k: np.transpose(k.reshape(t, h, w, c, d), (4, 3, 0, 1, 2)),
    )
    builder.tensor("videomae.embeddings.patch_embeddings.projection.bias", ("patch_embed", "bias"), (d,))
    blocks = []
    for i in range(enc.depth):
        blocks.append(
            (f"videomae.encoder.layer.{i}", ("token_encoder", "blocks", f"block_{i}"), d, enc.heads, enc.mlp_dim)
        )
    for i in range(dec.depth):
        blocks.append(
            (f"decoder.decoder_layers.{i}", ("token_decoder", "blocks", f"block_{i}"), dd, dec.heads, dec.mlp_dim)
        )
    for prefix, path, width, heads, mlp in blocks:
        add_block(builder, prefix, path, VIDEOMAE_BLOCK, width, heads, mlp, enc.qkv_bias)
    if enc.final_norm:
        builder.norm("videomae.layernorm", ("token_encoder", "norm"), d)
    builder.linear("encoder_to_decoder", ("token_decoder", "embed"), d, dd, bias=dec.embed_bias)
    builder.tensor("mask_token", ("token_decoder", "mask_token"), (1, 1, dd))
    builder.norm("decoder.norm", ("token_decoder", "norm"), dd)
    builder.linear("decoder.head", ("token_decoder", "pred"), dd, method.patch_dim)
    keys = [f"{prefix}.attention.attention.key.bias" for prefix, *_ in blocks] if enc.qkv_bias else []
    key_bias = {key: builder.plan.pop(key) for key in keys}
    return builder.plan, key_bias


def convert_hf_videomae(
    state_dict: Mapping[str, Any], hf_config: Any
) -> tuple[ml_collections.ConfigDict, dict[str, Any]]:
    """Convert an HF `VideoMAEForPreTraining` checkpoint.

    Args:
      state_dict: key -> array (numpy or torch), 5.x in-memory or on-disk (`q_bias`) names.
      hf_config: `VideoMAEConfig` or its dict.

    Returns:
      `(config, params)`: an mmjax VideoMAE method config and its params pytree (numpy float32);
      the key biases HF lacks are zeros.

    Raises:
      CheckpointMismatchError: listing every missing, unexpected and mis-shaped key.
    """
    config = videomae_config_from_hf(hf_config)
    method = VideoMAE.from_config(config)
    plan, key_bias = _plan(method)
    arrays = {normalize_key(key): to_numpy(value) for key, value in state_dict.items()}
    check_plan(plan, arrays)  # HF's own keys, before the zero key biases join them
    zeros = {key: np.zeros(entry.shape, np.float32) for key, entry in key_bias.items()}
    return config, apply_plan({**plan, **key_bias}, {**arrays, **zeros})


def _check_convertible(method: VideoMAE) -> None:
    enc, dec = method.encoder, method.decoder
    norm_eps = enc.layer_norm_eps if dec.norm_eps is None else dec.norm_eps
    wanted = {
        "model.cls_token": (enc.cls_token, False),
        "model.posemb": (enc.posemb, "sincos_flat"),
        "decoder.posemb": (dec.posemb, "sincos_flat"),
        "decoder.embed_bias": (dec.embed_bias, False),
        "decoder.norm_eps": (norm_eps, HF_DECODER_NORM_EPS),
    }
    wrong = [f"{field}={value!r} (HF needs {need!r})" for field, (value, need) in wanted.items() if value != need]
    _, h, w = method.tubelet_size
    if h != w:
        wrong.append(f"videomae.tubelet_size={method.tubelet_size} (HF needs square h = w)")
    if wrong:
        raise ValueError("HF VideoMAEForPreTraining cannot express this model: " + "; ".join(wrong))


def hf_videomae_config(method: VideoMAE) -> dict[str, Any]:
    """The `config.json` dict of an HF `VideoMAEConfig` describing `method`."""
    _check_convertible(method)
    enc, dec, o = method.encoder, method.decoder, method.options
    frames, height, width = method.video_size
    return {
        "architectures": ["VideoMAEForPreTraining"],
        "model_type": "videomae",
        "image_size": height if height == width else [height, width],
        "patch_size": method.tubelet_size[1],
        "num_channels": method.channels,
        "num_frames": frames,
        "tubelet_size": method.tubelet_size[0],
        "hidden_size": enc.width,
        "num_hidden_layers": enc.depth,
        "num_attention_heads": enc.heads,
        "intermediate_size": enc.mlp_dim,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "layer_norm_eps": enc.layer_norm_eps,
        "qv_bias": enc.qkv_bias,
        "use_mean_pooling": not enc.final_norm,
        "decoder_hidden_size": dec.width,
        "decoder_num_hidden_layers": dec.depth,
        "decoder_num_attention_heads": dec.heads,
        "decoder_intermediate_size": dec.mlp_dim,
        "norm_pix_loss": o.norm_pix_loss,
    }


def to_hf_videomae(
    method: VideoMAE, params: Mapping[str, Any], drop_key_bias: bool = False
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """mmjax VideoMAE params -> HF 5.x `VideoMAEForPreTraining` state dict (numpy float32) and config dict.

    HF has no key bias. A non-zero one is refused unless `drop_key_bias`: dropping it changes no
    output (softmax ignores a shift shared by all logits of a query), only the round trip.
    """
    hf_config = hf_videomae_config(method)
    plan, key_bias = _plan(method)
    for entry in key_bias.values():
        largest = float(np.max(np.abs(get_path(params, entry.paths[0]))))
        if largest and not drop_key_bias:
            raise ValueError(
                f"params {'/'.join(entry.paths[0])} is not zero (max |b| = {largest:.3g}) and HF VideoMAE has "
                "no key bias; pass drop_key_bias=True to drop it (attention outputs do not depend on it)"
            )
    return invert_plan(plan, params), hf_config


def mask_from_hf(bool_masked_pos: Any) -> Mask:
    """HF's `bool_masked_pos` bool `[B, N]` (True = hidden, the same count per example) -> a fixed-count `Mask`.

    `ids_keep` lists the visible tokens in increasing position order, as HF's encoder sees them.
    """
    hidden = np.asarray(bool_masked_pos, bool)
    counts = hidden.sum(axis=1)
    if hidden.ndim != 2 or (counts != counts[0]).any():
        raise ValueError(
            f"bool_masked_pos must be [B, N] with the same hidden count per example; got shape {hidden.shape}, "
            f"counts {sorted(set(counts.tolist()))}"
        )
    return mask_from_ranking(jnp.asarray(hidden, jnp.float32), hidden.shape[1] - int(counts[0]))


def hf_masked_predictions(pred: Any, bool_masked_pos: Any) -> np.ndarray:
    """mmjax predictions `[B, N, P]` -> HF's `logits` `[B, M, P]`: the hidden tokens in increasing position order."""
    pred, hidden = np.asarray(pred), np.asarray(bool_masked_pos, bool)
    order = np.argsort(~hidden, axis=1, kind="stable")[:, : int(hidden[0].sum())]
    return np.take_along_axis(pred, order[..., None], axis=1)


def load_hf_videomae(directory: str | os.PathLike) -> tuple[ml_collections.ConfigDict, dict[str, Any]]:
    """Convert a local HF checkpoint directory (`config.json` + `model.safetensors`); no network."""
    from safetensors.numpy import load_file

    with open(os.path.join(directory, "config.json")) as f:
        hf_config = json.load(f)
    weights = os.path.join(directory, "model.safetensors")
    if not os.path.exists(weights):
        raise FileNotFoundError(f"{weights} not found; save the HF model with safe_serialization=True")
    return convert_hf_videomae(load_file(weights), hf_config)


def save_hf_videomae(
    method: VideoMAE,
    params: Mapping[str, Any],
    out: str | os.PathLike,
    force: bool = False,
    drop_key_bias: bool = False,
) -> str:
    """Write `config.json` and `model.safetensors` (the on-disk `q_bias` / `v_bias` names) to `out` atomically.

    Loads with `transformers.VideoMAEForPreTraining.from_pretrained(out)`; needs `safetensors` only (no torch).
    """
    from safetensors.numpy import save_file

    state, hf_config = to_hf_videomae(method, params, drop_key_bias)
    with atomic_directory(out, force) as tmp:
        save_file(
            {_swap_suffix(k, _BIAS_NAMES): v for k, v in state.items()},
            os.path.join(tmp, "model.safetensors"),
            metadata={"format": "pt"},
        )
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(hf_config, f, indent=2)
    return os.fspath(out)


__all__ = [
    "convert_hf_videomae",
    "hf_masked_predictions",
    "hf_videomae_config",
    "load_hf_videomae",
    "mask_from_hf",
    "save_hf_videomae",
    "to_hf_videomae",
    "videomae_config_from_hf",
]
