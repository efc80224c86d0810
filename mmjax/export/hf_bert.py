"""HF transformers `BertForMaskedLM` weights and config <-> mmjax `BertMLM` params and `BertConfig`.

Every key is accounted for: missing, unexpected or mis-shaped keys raise
`CheckpointMismatchError` listing all of them. The decoder of the MLM head is tied to the
word embeddings (and its bias to `cls.predictions.bias`): on import those two keys may be
absent (transformers 5.x `save_pretrained` leaves them out) and, when present, must equal what
they are tied to; on export they are written. Older files name LayerNorm parameters
`gamma` / `beta` and carry the `position_ids` buffer; `BertForPreTraining` files (most hub
checkpoints) add a pooler and a next-sentence head, dropped on import as HF's `BertForMaskedLM` does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from mmjax.export.atomic import atomic_directory
from mmjax.export.plan import Plan, PlanBuilder, apply_plan, invert_plan, to_numpy
from mmjax.models.bert import BertConfig

_TIED = {
    "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}
# Buffers some transformers versions keep in the state dict; they hold no parameters.
_BUFFERS = ("bert.embeddings.position_ids", "bert.embeddings.token_type_ids")
# Heads of `BertForPreTraining` that `BertMLM` lacks; dropped on import.
HF_BERT_IGNORED = ("bert.pooler.", "cls.seq_relationship.")
# Legacy (TF-converted) LayerNorm names, as in `bert-base-uncased`.
_LEGACY_SUFFIXES = {".LayerNorm.gamma": ".LayerNorm.weight", ".LayerNorm.beta": ".LayerNorm.bias"}


def normalize_bert_key(key: str) -> str:
    """A `BertForMaskedLM` / `BertForPreTraining` key with legacy `gamma` / `beta` names as `weight` / `bias`."""
    for old, new in _LEGACY_SUFFIXES.items():
        if key.endswith(old):
            return key.removesuffix(old) + new
    return key


def bert_config_from_hf(hf_config: Any) -> BertConfig:
    """`BertConfig` from an HF `BertConfig` (object or its dict); dropout as HF's `hidden_dropout_prob`."""
    c = hf_config.to_dict() if hasattr(hf_config, "to_dict") else dict(hf_config)
    if c.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"hidden_act={c['hidden_act']!r} is not supported; mmjax BERT uses exact 'gelu'")
    if c.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"position_embedding_type={c['position_embedding_type']!r}: only 'absolute' is supported")
    return BertConfig(
        vocab_size=c["vocab_size"],
        width=c["hidden_size"],
        depth=c["num_hidden_layers"],
        heads=c["num_attention_heads"],
        mlp_dim=c["intermediate_size"],
        max_len=c["max_position_embeddings"],
        type_vocab_size=c.get("type_vocab_size", 2),
        layer_norm_eps=c.get("layer_norm_eps", 1e-12),
        dropout=c.get("hidden_dropout_prob", 0.1),
        init_std=c.get("initializer_range", 0.02),
    )


def hf_bert_config(cfg: BertConfig) -> dict[str, Any]:
    """The fields of an HF `BertConfig` for `cfg` (`transformers.BertConfig(**hf_bert_config(cfg))`)."""
    check_exportable(cfg)
    return {
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.width,
        "num_hidden_layers": cfg.depth,
        "num_attention_heads": cfg.heads,
        "intermediate_size": cfg.mlp_dim,
        "max_position_embeddings": cfg.max_len,
        "type_vocab_size": cfg.type_vocab_size,
        "layer_norm_eps": cfg.layer_norm_eps,
        "hidden_dropout_prob": cfg.dropout,
        "attention_probs_dropout_prob": cfg.dropout,
        "initializer_range": cfg.init_std,
        "hidden_act": "gelu",
        "tie_word_embeddings": True,
    }


def check_exportable(cfg: BertConfig) -> None:
    """HF `BertForMaskedLM` has no decoder between the encoder and the MLM head (MAE-LM's)."""
    if cfg.decoder_depth:
        raise ValueError(
            f"model.decoder_depth={cfg.decoder_depth}: HF BertForMaskedLM has no MAE-LM decoder; expected 0"
        )


def bert_plan(cfg: BertConfig) -> Plan:
    """`BertForMaskedLM` state-dict keys -> `BertMLM` param paths (tied decoder keys included)."""
    b = PlanBuilder()
    d, h, v = cfg.width, cfg.heads, cfg.vocab_size
    emb = "bert.embeddings"
    b.tensor(f"{emb}.word_embeddings.weight", ("word_embeddings", "embedding"), (v, d))
    b.tensor(f"{emb}.position_embeddings.weight", ("position_embeddings", "embedding"), (cfg.max_len, d))
    b.tensor(f"{emb}.token_type_embeddings.weight", ("token_type_embeddings", "embedding"), (cfg.type_vocab_size, d))
    b.norm(f"{emb}.LayerNorm", ("embed_norm",), d)
    for i in range(cfg.depth):
        prefix, path = f"bert.encoder.layer.{i}", (f"block_{i}",)
        for name in ("query", "key", "value"):
            source = f"{prefix}.attention.self.{name}"
            b.linear(source, (*path, name), d, d, kernel_shape=(d, h, d // h), bias_shape=(h, d // h))
        b.linear(f"{prefix}.attention.output.dense", (*path, "out"), d, d, kernel_shape=(h, d // h, d))
        b.norm(f"{prefix}.attention.output.LayerNorm", (*path, "attn_norm"), d)
        b.linear(f"{prefix}.intermediate.dense", (*path, "fc1"), d, cfg.mlp_dim)
        b.linear(f"{prefix}.output.dense", (*path, "fc2"), cfg.mlp_dim, d)
        b.norm(f"{prefix}.output.LayerNorm", (*path, "mlp_norm"), d)
    b.linear("cls.predictions.transform.dense", ("head_dense",), d, d)
    b.norm("cls.predictions.transform.LayerNorm", ("head_norm",), d)
    b.tensor("cls.predictions.bias", ("head_bias",), (v,))
    b.tensor("cls.predictions.decoder.weight", ("word_embeddings", "embedding"), (v, d))
    b.tensor("cls.predictions.decoder.bias", ("head_bias",), (v,))
    return b.plan


def convert_hf_bert(
    state_dict: Mapping[str, Any], cfg: BertConfig, ignore: Iterable[str] = HF_BERT_IGNORED
) -> dict[str, Any]:
    """A `BertForMaskedLM` state dict (torch tensors or arrays) -> `BertMLM` params (numpy float32).

    Args:
      state_dict: key -> array; current or legacy (`LayerNorm.gamma` / `beta`) names.
      cfg: the model's `BertConfig`.
      ignore: key prefixes dropped before checking (the pooler and next-sentence head by default).

    Raises:
      CheckpointMismatchError: listing every missing, unexpected and mis-shaped key.
      ValueError: when a tied decoder key differs from what it is tied to.
    """
    ignore = tuple(ignore)
    arrays = {}
    for key, value in state_dict.items():
        key = normalize_bert_key(key)
        if key not in _BUFFERS and not key.startswith(ignore):
            arrays[key] = to_numpy(value)
    for tied, source in _TIED.items():
        if tied not in arrays and source in arrays:
            arrays[tied] = arrays[source]
        elif tied in arrays and source in arrays and arrays[tied].shape == arrays[source].shape:
            if not np.array_equal(arrays[tied], arrays[source]):
                raise ValueError(f"{tied} differs from {source}; mmjax BERT ties them (untied heads are not supported)")
    return apply_plan(bert_plan(cfg), arrays, skip=_TIED)


def to_hf_bert(params: Mapping[str, Any], cfg: BertConfig) -> dict[str, np.ndarray]:
    """`BertMLM` params -> a `BertForMaskedLM` state dict (numpy float32, tied keys written out)."""
    check_exportable(cfg)
    return invert_plan(bert_plan(cfg), params)


def save_hf_bert(method: Any, params: Mapping[str, Any], out: str | os.PathLike, force: bool = False) -> str:
    """An MLM run's `BertMLM` as `config.json` + `model.safetensors` in `out` (atomically), for
    `transformers.BertForMaskedLM.from_pretrained(out)`; `load_hf_bert(out)` reads it back."""
    from safetensors.numpy import save_file

    cfg = method.model_config
    state = to_hf_bert(params, cfg)
    with atomic_directory(out, force) as tmp:
        save_file(state, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump({"model_type": "bert", "architectures": ["BertForMaskedLM"], **hf_bert_config(cfg)}, f, indent=2)
    return os.fspath(out)


def load_hf_bert(source: Any) -> tuple[BertConfig, dict[str, Any]]:
    """`(config, params)` from a transformers `BertForMaskedLM`: in memory, or a local directory.

    A directory holds `config.json` + `model.safetensors`, as `save_pretrained` writes it; no network.
    """
    if isinstance(source, (str, os.PathLike)):
        from safetensors.numpy import load_file

        with open(os.path.join(source, "config.json")) as f:
            cfg = bert_config_from_hf(json.load(f))
        weights = os.path.join(source, "model.safetensors")
        if not os.path.exists(weights):
            raise FileNotFoundError(f"{weights} not found; save the HF model with safe_serialization=True")
        return cfg, convert_hf_bert(load_file(weights), cfg)
    cfg = bert_config_from_hf(source.config)
    return cfg, convert_hf_bert(source.state_dict(), cfg)
