"""Fine-tuning: a classification head on the encoder of any pretrained run, trained end to end.

The recipe is MAE's and BEiT's fine-tuning (He et al. 2022, Bao et al. 2022): the pretrained
ViT encoder plus a linear head initialized near zero, cross-entropy with label smoothing, AdamW
with warmup + cosine and layer-wise learning-rate decay (`train.layer_decay`: block i of L trains
at `lr * decay^(L - i)`, the embeddings at `decay^(L + 1)`, the head at `lr`;
`mmjax.train.optimizer.layer_decay_scales`).

`finetune.from_workdir` names the pretrained run. Any method with an `encoder` hook (MAE,
SimMIM, BEiT, a distilled student, I-JEPA's target encoder with `pool="mean"`) gives its
encoder: the builder reads the run's config for the encoder's architecture, and on a fresh run
the trainer loads its checkpoint once for `load_frozen` to copy the encoder in (it then trains,
unless LoRA freezes it). The run keeps the pretrained run's config (`read_runs.json`) and its
own parameters, so it resumes, evaluates and exports after the pretrained workdir is gone.

With `finetune.lora_rank` > 0 the encoder stays frozen and low-rank adapters (Hu et al. 2022) on the
projections `lora_targets` names (the paper's `W_q`, `W_v` by default) train with the head; they run
unmerged in training (`mmjax.models.lora.with_lora`) and are merged into the kernels for export.

In training, `drop_path` drops each block's branches per example (stochastic depth, timm's linear
rule) and `mixup` / `cutmix` mix the batch with its mirror (`mmjax.ops.mixing`, timm's batch mode);
evaluation and `features` run the whole network.

An MLM run's BERT (`text_encoder` hook) fine-tunes for sequence classification on token rows
(`BertClassifier`: the `[CLS]` or mean token, BERT's dropout in training; data kind
`text_classes`); drop path and Mixup / CutMix are refused for it.

Any other method with a probe `features(params, inputs, pool)` (PatchTST, TimesBERT, Point-MAE,
VideoMAE, ...) fine-tunes through it (`FeaturesClassifier`: its whole params as one `encoder`
parameter, of which what `features` reads trains; `series_classes` serves UCR sets).

Left out so far (stated, not hidden): the averaged-pool `fc_norm` of MAE's `global_pool` (here
`pool="mean"` averages the encoder's final-normed patch tokens, as the probes do), BERT's
pooler (a tanh layer these MLMs never trained), LoRA and drop path for encoders other than a ViT.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import PartitionSpec as P

from mmjax.config import dataclass_from_config, knob, section_config
from mmjax.data.kinds import data_kind
from mmjax.methods.common import has_feature_function, has_image_encoder, input_key, pool_tokens, read_leaves
from mmjax.methods.protocol import Batch, BuiltRun, LoadedRun, Params, RunPart
from mmjax.methods.registry import register_method
from mmjax.models.bert import BertConfig, pool_text
from mmjax.models.classifier import BertClassifier, FeaturesClassifier, ViTClassifier
from mmjax.models.config import ViTConfig
from mmjax.models.lora import init_lora, lora_scale, lora_sites, merge_lora, with_lora
from mmjax.models.transformer import DROP_PATH_RNG
from mmjax.models.vit import has_cls_token
from mmjax.ops.mixing import mix_batch

POOLS = ("cls", "mean")


@dataclasses.dataclass(frozen=True)
class FineTuneOptions:
    """`finetune`: the pretrained run and the head (MAE's fine-tuning recipe)."""

    from_workdir: str = knob("", "the pretrained run whose encoder is fine-tuned (required)")
    from_step: int = knob(-1, "its checkpoint step; -1 = the latest")
    num_classes: int = knob(10, "classes of the head", low=2)
    pool: str = knob("cls", "the head reads the cls token or the mean patch token", choices=POOLS)
    label_smoothing: float = knob(0.1, "label smoothing of the cross-entropy (MAE: 0.1)", low=0, high=1, high_open=True)
    drop_path: float = knob(
        0.1, "stochastic depth of the last block, linear from 0 (MAE ViT-B: 0.1)", low=0, high=1, high_open=True
    )
    mixup: float = knob(0.0, "Mixup's Beta alpha; 0 = off (MAE ViT-B: 0.8)", low=0)
    cutmix: float = knob(0.0, "CutMix's Beta alpha; 0 = off (MAE ViT-B: 1.0; with mixup, either per batch)", low=0)
    lora_rank: int = knob(0, "LoRA: adapters of this rank train, the encoder stays frozen; 0 = train it all", low=0)
    lora_alpha: float = knob(16.0, "LoRA: the low-rank path is scaled by alpha / rank", low=0, low_open=True)
    lora_targets: tuple[str, ...] = knob(
        ("query_value",), "LoRA: projections to adapt, names of mmjax.models.lora.TARGETS or path regexes"
    )

    def __post_init__(self):
        if not self.from_workdir:
            raise ValueError(
                "finetune.from_workdir is empty; expected the workdir of a finished pretraining run "
                "(e.g. --config.finetune.from_workdir=/tmp/mae_mnist)"
            )


def default_config() -> ml_collections.ConfigDict:
    """The method's fields of an experiment config (the encoder's architecture is the pretrained run's)."""
    return ml_collections.ConfigDict({"method": "finetune", "finetune": section_config(FineTuneOptions)})


@dataclasses.dataclass(frozen=True, eq=False)
class PretrainedEncoder:
    """What fine-tuning reads of a pretrained run's encoder: its config (a `ViTConfig`, or a `BertConfig` for
    text), whether it has a cls token (I-JEPA's ViT has none) and the padding id of its texts. Any other
    method with a probe `features` function (PatchTST, Point-MAE, VideoMAE, ...) is `method` itself, with
    an `example` batch of its data for `method.init`, and no config."""

    config: ViTConfig | BertConfig | None
    cls_token: bool = True
    pad_id: int = 0
    method: Any = None
    example: Any = None

    @property
    def text(self) -> bool:
        return isinstance(self.config, BertConfig)

    @property
    def generic(self) -> bool:
        return self.config is None


def pretrained_encoder(run: BuiltRun, field: str) -> PretrainedEncoder:
    """The encoder a pretrained run's method gives (`encoder` hook for a ViT, `text_encoder` for BERT), from
    shapes alone."""
    if callable(getattr(run.method, "text_encoder", None)):
        return PretrainedEncoder(run.method.model_config, pad_id=run.method.special.pad)
    example = data_kind(run.config.data).example_batch(run.config.data)
    if not has_image_encoder(run.method) and has_feature_function(run.method):
        return PretrainedEncoder(None, method=run.method, example=example)
    if not has_image_encoder(run.method):
        raise ValueError(
            f"{field}: a {run.config.method!r} run has no encoder to fine-tune: no ViT, no BERT and no "
            "features(params, inputs, pool)"
        )
    abstract = jax.eval_shape(run.method.init, jax.random.key(0), example)
    config, encoder = run.method.encoder(abstract)
    return PretrainedEncoder(config, has_cls_token(encoder))


def pretrained_params(run: LoadedRun) -> Params:
    """The params of the encoder `pretrained_encoder` describes."""
    hook = getattr(run.method, "text_encoder", None) or getattr(run.method, "encoder", None)
    return hook(run.params)[1] if callable(hook) else run.params


@dataclasses.dataclass(frozen=True)
class FineTune:
    """Params `{"encoder": ..., "head": ...}`; batches hold `label` `[B]` and `image` `[B, H, W, C]`
    (normalized; a ViT encoder) or `input_ids` `[B, L]` (`[CLS] text [SEP]` then padding; BERT)."""

    pretrained: PretrainedEncoder
    options: FineTuneOptions

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict, pretrained: BuiltRun) -> FineTune:
        options = dataclass_from_config(FineTuneOptions, config.finetune, "finetune")
        encoder = pretrained_encoder(pretrained, "finetune.from_workdir")
        where = f"the {pretrained.config.method!r} encoder of finetune.from_workdir={options.from_workdir!r}"
        data = config.get("data") or {}
        if encoder.text or encoder.generic:
            check_other_fine_tune(options, encoder, data, where)
            return cls(encoder, options)
        model_config = encoder.config
        if options.pool == "cls" and not encoder.cls_token:
            raise ValueError(f"finetune.pool='cls': {where} has no cls token; expected finetune.pool='mean'")
        got = (tuple(data.get("image_size", model_config.image_size)), data.get("channels", model_config.channels))
        if got != (tuple(model_config.image_size), model_config.channels):
            raise ValueError(
                f"data.image_size={got[0]}, data.channels={got[1]}: {where} takes "
                f"{tuple(model_config.image_size)} images with {model_config.channels} channels"
            )
        for field, value in (("lora_rank", options.lora_rank), ("drop_path", options.drop_path)):
            if value and model_config.scan:
                raise ValueError(
                    f"finetune.{field}={value} with a scanned encoder (model.scan=True in "
                    f"{options.from_workdir!r}): it needs unrolled blocks"
                )
        return cls(encoder, options)

    @property
    def model_config(self) -> ViTConfig | BertConfig:
        return self.pretrained.config

    @property
    def input_key(self) -> str:
        """The batch entry the classifier reads."""
        if self.pretrained.generic:
            return input_key(self.pretrained.method)
        return "input_ids" if self.pretrained.text else "image"

    @property
    def model(self) -> ViTClassifier | BertClassifier | FeaturesClassifier:
        options, encoder = self.options, self.pretrained
        if encoder.generic:
            return FeaturesClassifier(
                lambda rng: encoder.method.init(rng, encoder.example),
                functools.partial(encoder.method.features, pool=options.pool),
                options.num_classes,
            )
        if encoder.text:
            return BertClassifier(encoder.config, options.num_classes, options.pool, encoder.pad_id)
        return ViTClassifier(encoder.config, options.num_classes, options.pool, encoder.cls_token, options.drop_path)

    def _inputs(self, batch: Batch) -> jax.Array:
        if self.input_key not in batch or "label" not in batch:
            raise KeyError(f"finetune batches need {self.input_key!r} and 'label' [B]; got keys {sorted(batch)}")
        return batch[self.input_key]

    def _example(self) -> jax.ShapeDtypeStruct:
        cfg = self.model_config
        if self.pretrained.generic:
            example = self.pretrained.example[self.input_key]
            return jax.ShapeDtypeStruct((1, *example.shape[1:]), example.dtype)
        if self.pretrained.text:
            return jax.ShapeDtypeStruct((1, min(8, cfg.max_len)), jnp.int32)
        return jax.ShapeDtypeStruct((1, *cfg.image_size, cfg.channels), jnp.float32)

    # --- Parameters -------------------------------------------------------------------

    @property
    def adapter_scale(self) -> float:
        return lora_scale(self.options.lora_alpha, max(self.options.lora_rank, 1))

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        """Random encoder and head (plus `lora` adapters with `lora_rank`); on a fresh run `load_frozen`
        puts the pretrained encoder in."""
        inputs = self._inputs(batch)
        model_key, lora_key = jax.random.split(rng)
        params = nn.meta.unbox(self.model.init(model_key, inputs)["params"])
        if not self.options.lora_rank:
            return params
        sites = lora_sites(lambda p, x: self.model.apply({"params": p}, x), params, inputs)
        encoder_sites = {path: shapes for path, shapes in sites.items() if path.startswith("encoder/")}
        adapters = init_lora(lora_key, encoder_sites, self.options.lora_rank, self.options.lora_targets)
        return {**params, "lora": adapters}

    def param_axes(self) -> Params:
        example = self._example()
        axes = nn.get_partition_spec(jax.eval_shape(lambda x: self.model.init(jax.random.key(0), x), example))
        axes = axes["params"]
        if not self.options.lora_rank:
            return axes
        batch = {self.input_key: example, "label": jax.ShapeDtypeStruct((1,), jnp.int32)}
        adapters = jax.eval_shape(self.init, jax.random.key(0), batch)["lora"]
        return {**axes, "lora": jax.tree.map(lambda _: P(), adapters)}

    def trainable(self, params: Params) -> Params:
        """Everything trains; with LoRA, the adapters and the head only; of a method's whole tree (a generic
        encoder), what its `features` read."""
        frozen = {"encoder"} if self.options.lora_rank else set()
        marks = {part: jax.tree.map(lambda _, t=part not in frozen: t, tree) for part, tree in params.items()}
        if self.pretrained.generic:
            marks["encoder"] = self._read_by_features(params["encoder"])
        return marks

    def _read_by_features(self, encoder: Params) -> Params:
        paths, treedef = jax.tree_util.tree_flatten_with_path(encoder)
        flat = {jax.tree_util.keystr(path): leaf for path, leaf in paths}
        names = list(flat)

        def features(leaves, inputs):
            tree = jax.tree_util.tree_unflatten(treedef, leaves)
            return self.pretrained.method.features(tree, inputs, self.options.pool)

        read = set(read_leaves(features, flat, self._example()))
        return jax.tree_util.tree_unflatten(treedef, [name in read for name in names])

    def frozen_runs(self) -> dict[str, RunPart]:
        return {"pretrained": pretrained_part(self.options)}

    def load_frozen(self, params: Params, runs: dict[str, LoadedRun]) -> Params:
        """Host-side: the pretrained run's encoder in `params["encoder"]` (its training-only parts left out)."""
        encoder = pretrained_params(runs["pretrained"])
        kept = {k: v for k, v in encoder.items() if k in params["encoder"]}
        expected = jax.tree.map(lambda x: (x.shape, x.dtype), params["encoder"])
        got = jax.tree.map(lambda x: (x.shape, x.dtype), kept)
        if jax.tree.structure(expected) != jax.tree.structure(got) or expected != got:
            raise ValueError(
                f"finetune.from_workdir={self.options.from_workdir!r}: its encoder's parameters do not match the "
                "encoder built from its config.json"
            )
        return {**params, "encoder": kept}

    # --- Training ---------------------------------------------------------------------

    def logits(self, params: Params, images: jax.Array, drop_rng: jax.Array | None = None) -> jax.Array:
        """float32 `[B, num_classes]` of normalized images `[B, H, W, C]` or token rows `[B, L]` (the adapters
        unmerged); with `drop_rng`, a ViT's blocks drop per example (stochastic depth), BERT's dropout is on."""
        model_params = {k: v for k, v in params.items() if k != "lora"}
        text = self.pretrained.text
        rngs = {} if drop_rng is None else {"dropout" if text else DROP_PATH_RNG: drop_rng}
        kwargs = {"deterministic": drop_rng is None} if text else {}
        with with_lora(params.get("lora", {}), self.adapter_scale):
            return self.model.apply({"params": model_params}, images, rngs=rngs, **kwargs)

    def loss(self, params: Params, batch: Batch, rng: jax.Array, train: bool = True) -> tuple[jax.Array, dict]:
        """Cross-entropy against smoothed labels; in training, Mixup / CutMix and drop path first."""
        options = self.options
        images, labels = self._inputs(batch), batch["label"].astype(jnp.int32)
        targets = optax.smooth_labels(jax.nn.one_hot(labels, options.num_classes), options.label_smoothing)
        drop_rng = None
        if train:
            mix_rng, drop_rng = jax.random.split(rng)
            images, targets = mix_batch(mix_rng, images, targets, options.mixup, options.cutmix)
        logits = self.logits(params, images, drop_rng)
        loss = jnp.mean(optax.softmax_cross_entropy(logits, targets))
        accuracy = jnp.mean((jnp.argmax(logits, -1) == labels).astype(jnp.float32))
        return loss, {"loss": loss, "train_accuracy": accuracy}

    # --- Evaluation -------------------------------------------------------------------

    def merged(self, params: Params) -> Params:
        """`{"encoder", "head"}` with the LoRA adapters folded into the kernels (as they are without LoRA)."""
        model_params = {k: v for k, v in params.items() if k != "lora"}
        return merge_lora(model_params, params["lora"], self.adapter_scale) if "lora" in params else model_params

    def features(self, params: Params, inputs: jax.Array, pool: str = "cls") -> jax.Array:
        """The fine-tuned encoder's features: `cls` / `mean` `[B, D]` or `tokens` (`[B, 1 + N, D]` of images,
        `[B, L, D]` of token rows)."""
        merged = {"params": self.merged(params)}
        if self.pretrained.generic:
            return self.pretrained.method.features(merged["params"]["encoder"], inputs, pool)
        if self.pretrained.text:
            pad = self.pretrained.pad_id
            hidden = self.model.apply(merged, inputs, method=lambda m, x: m.encoder.encode(x, (x != pad).astype(int)))
            return pool_text(hidden, inputs != pad, pool)
        tokens, _ = self.model.apply(merged, inputs, method=lambda m, x: m.encoder(x))
        return pool_tokens(tokens, pool, self.pretrained.cls_token)

    @property
    def encoder(self) -> Callable[[Params], tuple[ViTConfig, Params]] | None:
        """The `encoder` hook of a fine-tuned ViT (adapters merged), for export; None for BERT, which
        exports through `features`."""
        return None if self.pretrained.text or self.pretrained.generic else self._vit_encoder

    def _vit_encoder(self, params: Params) -> tuple[ViTConfig, Params]:
        return self.model_config, self.merged(params)["encoder"]


def check_other_fine_tune(options: FineTuneOptions, encoder: PretrainedEncoder, data: Any, where: str) -> None:
    """What a BERT or a generic encoder cannot take: the ViT-only parts of the recipe (and, for a generic one,
    LoRA), rows longer than BERT's positions, a pool its `features` refuses."""
    kind = "a text encoder" if encoder.text else "not a ViT"
    fields = [("drop_path", options.drop_path), ("mixup", options.mixup), ("cutmix", options.cutmix)]
    fields += [("lora_rank", options.lora_rank)] if encoder.generic else []
    for field, value in fields:
        if value:
            raise ValueError(f"finetune.{field}={value}: {where} is {kind}; expected 0 (ViT encoders only)")
    if encoder.text and data.get("seq_len", 0) > encoder.config.max_len:
        raise ValueError(f"data.seq_len={data.get('seq_len')}: {where} has {encoder.config.max_len} positions")
    if encoder.generic:
        key = input_key(encoder.method)
        inputs = encoder.example[key]
        if data:
            got = data_kind(data).batch_spec(data, 1)
            if key not in got or tuple(got[key].shape[1:]) != tuple(inputs.shape[1:]):
                shape = tuple(got[key].shape[1:]) if key in got else f"no {key!r} entry"
                raise ValueError(f"data: its batches give {key} {shape}; {where} reads {key} {tuple(inputs.shape[1:])}")

        def features():
            params = encoder.method.init(jax.random.key(0), encoder.example)
            return encoder.method.features(params, inputs, options.pool)

        try:
            jax.eval_shape(features)
        except (ValueError, KeyError) as error:
            raise ValueError(f"finetune.pool={options.pool!r}: {where} refuses it ({error})") from None


def pretrained_part(options: FineTuneOptions) -> RunPart:
    """The run `finetune.from_workdir` names."""
    step = None if options.from_step < 0 else options.from_step
    return RunPart("finetune.from_workdir", options.from_workdir, step, hint="expected a finished pretraining run")


def pretrained_runs(config: ml_collections.ConfigDict) -> dict[str, RunPart]:
    """What the builder reads: the pretrained run's config (`register_method(..., reads=)`)."""
    return {"pretrained": pretrained_part(dataclass_from_config(FineTuneOptions, config.finetune, "finetune"))}


@register_method("finetune", reads=pretrained_runs, protocols=("classification",))
def build_finetune(config: ml_collections.ConfigDict, runs: dict[str, BuiltRun]) -> FineTune:
    return FineTune.from_config(config, runs["pretrained"])


__all__ = [
    "POOLS",
    "FineTune",
    "FineTuneOptions",
    "build_finetune",
    "default_config",
    "PretrainedEncoder",
    "pretrained_encoder",
]
