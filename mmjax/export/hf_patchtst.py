"""HF transformers `PatchTSTForPretraining` weights and config <-> an mmjax PatchTST, both ways.

The HF configuration that is mmjax's architecture: shared patch embedding, pre-LN blocks with
LayerNorm and exact GELU, attention over time only (`channel_attention=False`), no cls token,
the `std` scaler (RevIN: mean and `sqrt(var + 1e-5)` over the whole context), random masking
of each channel's own patches with zeros. On the mmjax side that is `model.final_norm=False`
(HF's encoder ends at its last block), `model.layer_norm_eps=norm_eps`, `model.positions`
`learned` (HF `random`) or `sincos` (HF's table, recognised to 1e-5; any other table is kept as
a learned one), and `patchtst.patch_stride` for HF's strided patchifier. HF's dropouts only act
in training; mmjax trains without them. Every other HF option is refused naming its field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ml_collections
import numpy as np

from mmjax.export.hf_vitmae import hf_config_dict
from mmjax.export.plan import BlockNames, Plan, PlanBuilder, add_block, apply_plan, invert_plan, to_numpy
from mmjax.methods.patchtst import PAPER_MASK, PatchTST, default_config
from mmjax.ops.series import patchtst_sincos

PATCHTST_BLOCK = BlockNames(
    qkv=("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
    out="self_attn.out_proj",
    norm1="norm_sublayer1",
    norm2="norm_sublayer3",
    fc1="ff.0",
    fc2="ff.3",
)
POSITION_KEY = "model.encoder.positional_encoder.position_enc"
# A sincos table matches to this absolute tolerance or is imported as learned.
_SINCOS_ATOL = 1e-5
# HF field -> (the value mmjax's architecture needs, why); an absent field has HF's default, the value here.
_REQUIRED = {
    "norm_type": ("layernorm", "mmjax blocks use LayerNorm"),
    "pre_norm": (True, "mmjax blocks are pre-LN"),
    "use_cls_token": (False, "mmjax PatchTST has no cls token"),
    "channel_attention": (False, "mmjax PatchTST attends over time only"),
    "share_embedding": (True, "mmjax shares one patch embedding across channels"),
    "scaling": ("std", "mmjax normalizes each window by its mean and std (RevIN)"),
    "activation_function": ("gelu", "mmjax MLPs use exact GELU"),
    "bias": (True, "mmjax MLPs have biases"),
    "mask_value": (0, "mmjax zeroes hidden patches"),
    "mask_type": ("random", "mmjax's variate_patch mask hides random patches"),
    "channel_consistent_masking": (False, "mmjax's variate_patch mask draws each channel's own patches"),
    "unmasked_channel_indices": (None, "mmjax's variate_patch mask hides patches of every channel"),
    "minimum_scale": (1e-5, "the std scaler adds 1e-5 to the variance"),
    "scaling_dim": (1, "the std scaler reduces over time"),
    "keepdim": (True, "the std scaler keeps the time axis"),
}
# Not `PatchTSTConfig` fields: the scaler reads them only when a config carries them as extras.
_SCALER_EXTRAS = ("minimum_scale", "scaling_dim", "keepdim")
_POSITIONS = {"random": "learned", "sincos": "sincos"}


def _check_hf(c: Mapping[str, Any]) -> None:
    for field, (value, why) in _REQUIRED.items():
        got = c.get(field, value)
        if got != value or isinstance(got, bool) != isinstance(value, bool):
            raise ValueError(f"HF PatchTST {field}={got!r} is not supported: expected {value!r} ({why})")
    kind = c.get("positional_encoding_type", "sincos")
    if kind not in _POSITIONS:
        raise ValueError(f"HF PatchTST positional_encoding_type={kind!r}: expected one of {sorted(_POSITIONS)}")


def patchtst_config_from_hf(hf_config: Any) -> ml_collections.ConfigDict:
    """mmjax PatchTST method config from an HF `PatchTSTConfig` (object or dict).

    `data` holds only `window` (HF's `context_length`): merge it into a data section to train.
    The position kind follows `positional_encoding_type`; `convert_hf_patchtst` also checks the table.
    """
    c = hf_config_dict(hf_config)
    _check_hf(c)
    window, patch_len, stride = c["context_length"], c["patch_length"], c["patch_stride"]
    config = default_config()
    config.data = ml_collections.ConfigDict({"window": window})
    non_overlapping = stride == patch_len and window % patch_len == 0
    config.patchtst.update(
        patch_len=patch_len, patch_stride=None if non_overlapping else stride, mask_ratio=c["random_mask_ratio"]
    )
    config.model.update(
        width=c["d_model"],
        depth=c["num_hidden_layers"],
        heads=c["num_attention_heads"],
        mlp_dim=c["ffn_dim"],
        layer_norm_eps=c["norm_eps"],
        positions=_POSITIONS[c.get("positional_encoding_type", "sincos")],
        final_norm=False,
    )
    return config


def _plan(method: PatchTST) -> Plan:
    m = method.model_options
    builder = PlanBuilder()
    builder.linear("model.encoder.embedder.input_embedding", ("embed",), method.patch_len, m.width)
    builder.tensor(POSITION_KEY, ("pos_embedding",), (method.num_patches, m.width))
    for i in range(m.depth):
        path = ("encoder", "blocks", f"block_{i}")
        add_block(builder, f"model.encoder.layers.{i}", path, PATCHTST_BLOCK, m.width, m.heads, m.mlp_dim, True)
    builder.linear("head.linear", ("head",), m.width, method.patch_len)
    return builder.plan


def convert_hf_patchtst(
    state_dict: Mapping[str, Any], hf_config: Any
) -> tuple[ml_collections.ConfigDict, dict[str, Any]]:
    """Convert an HF `PatchTSTForPretraining` checkpoint into `(PatchTST config, params)`.

    Args:
      state_dict: key -> array (numpy or torch).
      hf_config: `PatchTSTConfig` or its dict.

    Returns:
      `(config, params)`: an mmjax PatchTST method config and its params pytree (numpy float32).

    Raises:
      ValueError: an HF option mmjax does not have, naming the field.
      CheckpointMismatchError: listing every missing, unexpected and mis-shaped key.
    """
    config = patchtst_config_from_hf(hf_config)
    arrays = {key: to_numpy(value) for key, value in state_dict.items()}
    if config.model.positions == "sincos" and POSITION_KEY in arrays:
        table = arrays[POSITION_KEY]
        expected = patchtst_sincos(PatchTST.from_config(config).num_patches, config.model.width)
        if table.shape != expected.shape or not np.allclose(table, expected, atol=_SINCOS_ATOL):
            config.model.positions = "learned"
    method = PatchTST.from_config(config)
    skip = [POSITION_KEY] if method.model_options.positions == "sincos" else []
    return config, apply_plan(_plan(method), arrays, skip=skip)


def hf_patchtst_config(method: PatchTST, num_input_channels: int) -> dict[str, Any]:
    """The `config.json` dict of the HF `PatchTSTConfig` computing what `method` computes.

    `num_input_channels`: the channel count V the HF model is built for (mmjax's PatchTST takes any).
    """
    m = method.model_options
    if m.final_norm:
        raise ValueError("model.final_norm=True: HF PatchTST has no LayerNorm after its last block; expected False")
    if method.mask_part.name != PAPER_MASK:
        raise ValueError(f"mask.kind={method.mask_part.name!r}: HF PatchTST's random masking is {PAPER_MASK!r}")
    if method.window <= method.patch_len:
        raise ValueError(
            f"data.window={method.window}: HF PatchTST needs more than patchtst.patch_len={method.patch_len}"
        )
    if num_input_channels < 1:
        raise ValueError(f"num_input_channels={num_input_channels}: expected a positive channel count")
    return {
        "architectures": ["PatchTSTForPretraining"],
        "model_type": "patchtst",
        "num_input_channels": num_input_channels,
        "context_length": method.window,
        "patch_length": method.patch_len,
        "patch_stride": method.patch_len if method.patch_stride is None else method.patch_stride,
        "d_model": m.width,
        "num_hidden_layers": m.depth,
        "num_attention_heads": m.heads,
        "ffn_dim": m.mlp_dim,
        "norm_eps": m.layer_norm_eps,
        "positional_encoding_type": "random" if m.positions == "learned" else "sincos",
        "random_mask_ratio": method.mask_ratio,
        "do_mask_input": True,
        **{field: value for field, (value, _) in _REQUIRED.items() if field not in _SCALER_EXTRAS},
        **{f"{kind}_dropout": 0.0 for kind in ("attention", "positional", "path", "ff", "head")},
    }


def to_hf_patchtst(
    method: PatchTST, params: Mapping[str, Any], num_input_channels: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """mmjax PatchTST params -> HF 5.x `PatchTSTForPretraining` state dict (numpy float32) and config dict.

    A `sincos` position table is written out as the table mmjax adds, so HF computes the same.
    """
    hf_config = hf_patchtst_config(method, num_input_channels)  # checks before any work
    fixed = {}
    if method.model_options.positions == "sincos":
        fixed[POSITION_KEY] = patchtst_sincos(method.num_patches, method.model_options.width)
    return invert_plan(_plan(method), params, fixed), hf_config


__all__ = ["convert_hf_patchtst", "hf_patchtst_config", "patchtst_config_from_hf", "to_hf_patchtst"]
