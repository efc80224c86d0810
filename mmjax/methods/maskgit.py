"""MaskGIT (Chang et al. 2022) / Muse (Chang et al. 2023): fill in masked tokenizer codes, generate in a few steps.

Training: tokenize the images with a frozen tokenizer, draw a masked fraction per
example from the schedule (never below `min_mask_rate`), replace those codes by the
mask id (= the tokenizer's vocab size, so never a code), and take cross entropy with
label smoothing on the masked codes only. Class labels (and, Muse-style, an embedding
sequence read by cross-attention) condition the transformer; each condition is dropped
with probability `cond_dropout` so the same model gives the unconditional logits that
classifier-free guidance needs.

Generation: `mmjax.generate.decode`, guided, jitted, from an all-masked or a partial map,
then the tokenizer's decoder turns codes into images.

The tokenizer is a frozen part of the params (`params["tokenizer"]`): the method declares the
run `maskgit.tokenizer_workdir` (`frozen_runs`), the trainer loads it once, `load_frozen` copies
it, `trainable` keeps it out of the optimizer. So a MaskGIT workdir holds everything `sample`
needs, and training streams plain images (the tokenizer encoder runs inside the step, cheap next
to the transformer). Batches may also
carry pre-tokenized `codes` (then the tokenizer is not run).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from mmjax.config import dataclass_from_config, knob, section_config
from mmjax.generate.decode import decode
from mmjax.generate.guidance import GUIDANCE_SCHEDULES, guided_tokens_to_logits
from mmjax.losses import masked_mean
from mmjax.masking.schedules import MASKGIT_SCHEDULES, ratio_mask, sample_mask_ratio
from mmjax.methods.common import pool_tokens
from mmjax.methods.frozen_tokenizer import build_tokenizer, load_tokenizer, tokenizer_run, train_only
from mmjax.methods.protocol import Batch, LoadedRun, Params, RunPart
from mmjax.methods.registry import register_method
from mmjax.models.config import AttentionOption, dtype_knob, remat_knob, scan_knob, transformer_config
from mmjax.models.maskgit import MaskGITTransformer


@dataclasses.dataclass(frozen=True)
class MaskGITOptions:
    """`maskgit`: the token vocabulary, the mask schedule and the classes (MaskGIT's ImageNet 256 defaults)."""

    vocab_size: int = knob(1024, "codes; overridden by the tokenizer's when `tokenizer_config` is set")
    token_grid: tuple[int, int] = knob((16, 16), "(h, w) of the code grid; the tokenizer's when it is set")
    num_classes: int = knob(1000, "class labels; label num_classes is the null class")
    schedule: str = knob("cosine", "the mask-ratio schedule of training and decoding (MASKGIT_SCHEDULES)")
    min_mask_rate: float = knob(0.0, "lowest masked fraction drawn in training, in [0, 1)")
    label_smoothing: float = knob(0.1, "label smoothing of the cross-entropy on hidden codes, in [0, 1)")
    cond_dropout: float = knob(0.1, "labels dropped to the null class in training (classifier-free guidance)")
    tokenizer_workdir: str = knob("", "the tokenizer run whose codes are the tokens (must be set)")
    tokenizer_step: int = knob(-1, "the tokenizer run's checkpoint step; -1 = the latest")

    def __post_init__(self):
        if self.schedule not in MASKGIT_SCHEDULES:
            raise ValueError(f"maskgit.schedule must be one of {MASKGIT_SCHEDULES}, got {self.schedule!r}")
        for name in ("min_mask_rate", "label_smoothing", "cond_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"maskgit.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.vocab_size < 2 or self.num_classes < 0 or len(self.token_grid) != 2:
            raise ValueError(
                f"maskgit.vocab_size must be >= 2, maskgit.num_classes >= 0 and maskgit.token_grid (h, w); got "
                f"{self.vocab_size}, {self.num_classes}, {self.token_grid}"
            )


@dataclasses.dataclass(frozen=True)
class SampleOptions:
    """`sample`: iterative decoding and the end-of-run samples."""

    steps: int = knob(8, "parallel decoding steps")
    choice_temperature: float = knob(4.5, "Gumbel noise on the confidences that pick the codes kept")
    sample_temperature: float = knob(1.0, "softmax temperature of the sampled codes")
    guidance: float = knob(1.0, "0: unconditional, 1: conditional, > 1: guided")
    guidance_schedule: str = knob("constant", "guidance over the decoding steps (GUIDANCE_SCHEDULES)")
    per_class: int = knob(8, "samples.png: a row of this many samples per class")
    # End-of-run class accuracy and Frechet distance on this many samples per class, judged by
    # an MLP on raw pixels fit on the train split (a measure for small images such as digits).
    metrics_per_class: int = knob(50, "samples per class of the end-of-run metrics; 0 = only samples.png")

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"sample.steps must be >= 1, got {self.steps}")
        if self.per_class < 0 or self.metrics_per_class < 0:
            raise ValueError(
                f"sample.per_class and sample.metrics_per_class must be >= 0, got "
                f"{self.per_class}, {self.metrics_per_class}"
            )
        if self.guidance_schedule not in GUIDANCE_SCHEDULES:
            raise ValueError(
                f"sample.guidance_schedule must be one of {GUIDANCE_SCHEDULES}, got {self.guidance_schedule!r}"
            )


@dataclasses.dataclass(frozen=True)
class ModelOptions(AttentionOption):
    """`model`: the bidirectional transformer over codes (MaskGIT: 768 wide, 24 blocks)."""

    width: int = knob(768, "token width")
    depth: int = knob(24, "transformer blocks")
    heads: int = knob(8, "attention heads (MaskGIT's transformer: 8)", low=1)
    mlp_dim: int = knob(3072, "hidden size of the MLPs")
    context_dim: int = knob(0, "> 0: Muse-style cross-attention to batch['context'] [B, M, C]", low=0)
    layer_norm_eps: float = knob(1e-12, "eps of every LayerNorm")
    dtype: str = dtype_knob()
    remat: str = remat_knob()
    scan: bool = scan_knob()

    def __post_init__(self):
        if self.width % self.heads:
            raise ValueError(f"model.width={self.width} must be a multiple of model.heads={self.heads}")


def default_config() -> ml_collections.ConfigDict:
    """The method's fields of an experiment config, with MaskGIT's ImageNet 256 defaults; from the declarations."""
    return ml_collections.ConfigDict(
        {
            "method": "maskgit",
            "model": section_config(ModelOptions),
            "maskgit": section_config(MaskGITOptions),
            "sample": section_config(SampleOptions),
            "tokenizer_config": None,  # the tokenizer run's experiment config (method, model, tokenizer ...)
        }
    )


@dataclasses.dataclass(frozen=True)
class MaskGIT:
    """The MaskGIT method: `init`, `loss`, `trainable`, `load_frozen`, `generate`, `decode_images`.

    Params: `{"transformer": ...}` plus `{"tokenizer": ...}` (frozen) when a tokenizer is configured.
    Batches: `label` int `[B]` and either `image` `[B, H, W, C]` (normalized, tokenized here) or
    `codes` int `[B, h, w]`; optionally `context` `[B, M, C]` and `context_lengths` int `[B]`.
    """

    model_options: ModelOptions
    options: MaskGITOptions
    sample_options: SampleOptions = SampleOptions()
    tokenizer: object | None = None

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> MaskGIT:
        section = dict(config.maskgit)
        tokenizer = build_tokenizer(config, ("tokenize", "detokenize", "vocab_size", "token_grid"))
        if tokenizer is not None:
            section.update(vocab_size=tokenizer.vocab_size, token_grid=tuple(tokenizer.token_grid))
        return cls(
            model_options=dataclass_from_config(ModelOptions, config.model, "model"),
            options=dataclass_from_config(MaskGITOptions, section, "maskgit"),
            sample_options=dataclass_from_config(SampleOptions, config.sample, "sample"),
            tokenizer=tokenizer,
        )

    # --- Shapes -----------------------------------------------------------------------

    @property
    def mask_id(self) -> int:
        """The mask token id: the vocabulary size, one past the last code."""
        return self.options.vocab_size

    @property
    def null_class(self) -> int:
        """The label of the unconditional (dropped) class."""
        return self.options.num_classes

    @property
    def num_tokens(self) -> int:
        h, w = self.options.token_grid
        return h * w

    @property
    def model(self) -> MaskGITTransformer:
        m = self.model_options
        return MaskGITTransformer(
            vocab_size=self.options.vocab_size,
            num_tokens=self.num_tokens,
            num_classes=self.options.num_classes,
            width=m.width,
            transformer=transformer_config(m),
            context_dim=m.context_dim,
        )

    def _model_inputs(self, batch_size: int) -> tuple:
        codes = jnp.zeros((batch_size, self.num_tokens), jnp.int32)
        labels = jnp.zeros((batch_size,), jnp.int32)
        m = self.model_options
        context = jnp.zeros((batch_size, 1, m.context_dim), jnp.float32) if m.context_dim else None
        return codes, labels, context

    # --- Parameters -------------------------------------------------------------------

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        transformer_rng, tokenizer_rng = jax.random.split(rng)
        params = {"transformer": nn.meta.unbox(self.model.init(transformer_rng, *self._model_inputs(1))["params"])}
        if self.tokenizer is not None:
            params["tokenizer"] = self.tokenizer.init(tokenizer_rng, {"image": batch["image"][:1]})
        return params

    def param_axes(self) -> Params:
        shapes = jax.eval_shape(self.model.init, jax.random.key(0), *self._model_inputs(1))
        axes = {"transformer": nn.get_partition_spec(shapes)["params"]}
        if self.tokenizer is not None:
            axes["tokenizer"] = self.tokenizer.param_axes()
        return axes

    def trainable(self, params: Params) -> Params:
        """The transformer trains; the tokenizer is frozen."""
        return train_only(params, ("transformer",))

    def frozen_runs(self) -> dict[str, RunPart]:
        """The tokenizer run `maskgit.tokenizer_workdir` (loaded by the trainer); {} without a tokenizer."""
        return tokenizer_run(self.tokenizer, "maskgit", self.options.tokenizer_workdir, self.options.tokenizer_step)

    def load_frozen(self, params: Params, runs: dict[str, LoadedRun]) -> Params:
        """Fill `params["tokenizer"]` from the tokenizer run (`runs["tokenizer"]`, a fresh run only)."""
        if self.tokenizer is None:
            return params
        expected = (self.options.vocab_size, self.options.token_grid)

        def shape_of(tokenizer):
            return tokenizer.vocab_size, tuple(tokenizer.token_grid)

        return load_tokenizer(
            params, runs, "maskgit", self.options.tokenizer_workdir, shape_of, expected, self.tokenizer
        )

    # --- Training ---------------------------------------------------------------------

    def codes(self, params: Params, batch: Batch) -> jax.Array:
        """int32 `[B, N]` codes: `batch["codes"]` flattened, or the frozen tokenizer's codes of `batch["image"]`."""
        if "codes" in batch:
            codes = batch["codes"]
        elif self.tokenizer is not None and "image" in batch:
            codes = self.tokenizer.tokenize(jax.lax.stop_gradient(params["tokenizer"]), batch["image"])
        else:
            raise KeyError(
                f"MaskGIT batches need 'codes' [B, h, w] or (with tokenizer_config) 'image'; got keys {sorted(batch)}"
            )
        return codes.reshape(codes.shape[0], -1).astype(jnp.int32)

    def logits(
        self,
        params: Params,
        codes: jax.Array,
        labels: jax.Array | None = None,
        context: jax.Array | None = None,
        context_lengths: jax.Array | None = None,
    ) -> jax.Array:
        """`[B, N]` codes (mask id where hidden) -> float32 `[B, N, vocab_size]` logits."""
        return self.model.apply({"params": params["transformer"]}, codes, labels, context, context_lengths)

    @property
    def input_key(self) -> str:
        """What `features` reads: images through the tokenizer, or codes `[B, h, w]` without one."""
        return "image" if self.tokenizer is not None else "codes"

    def features(self, params: Params, inputs: jax.Array, pool: str = "mean") -> jax.Array:
        """The transformer's outputs over the codes of whole inputs, none hidden and unconditioned (the null
        class, no context): MAGE's representation. `mean` (and `cls`: there is none) -> `[B, D]`; `tokens`
        -> `[B, 1 + N, D]`, that mean first."""
        codes = self.codes(params, {self.input_key: inputs})
        batch = codes.shape[0]
        labels = jnp.full((batch,), self.null_class, jnp.int32) if self.options.num_classes else None
        context = lengths = None
        if self.model_options.context_dim:
            context = jnp.zeros((batch, 1, self.model_options.context_dim), jnp.float32)
            lengths = jnp.zeros((batch,), jnp.int32)
        _, state = self.model.apply(
            {"params": params["transformer"]}, codes, labels, context, lengths, mutable=["intermediates"]
        )
        return pool_tokens(state["intermediates"]["hidden"][0], pool, cls_token=False)

    def conditions(
        self, rng: jax.Array, batch: Batch, dropout: float
    ) -> tuple[jax.Array | None, jax.Array | None, jax.Array | None]:
        """Labels `[B]`, context `[B, M, C]` and context lengths `[B]`, each example's dropped w.p. `dropout`.

        A dropped label becomes the null class; a dropped context gets length 0 (no key).
        """
        labels = batch["label"].astype(jnp.int32) if self.options.num_classes else None
        context = batch.get("context")
        batch_size = batch["label"].shape[0] if "label" in batch else context.shape[0]
        drop = jax.random.uniform(rng, (batch_size,)) < dropout
        if labels is not None:
            labels = jnp.where(drop, self.null_class, labels)
        lengths = None
        if context is not None:
            lengths = batch.get("context_lengths", jnp.full((batch_size,), context.shape[1], jnp.int32))
            lengths = jnp.where(drop, 0, lengths)
        return labels, context, lengths

    def loss(self, params: Params, batch: Batch, rng: jax.Array, train: bool = True) -> tuple[jax.Array, dict]:
        """Label-smoothed cross entropy on the masked codes only."""
        ratio_rng, mask_rng, drop_rng = jax.random.split(rng, 3)
        codes = self.codes(params, batch)
        batch_size = codes.shape[0]
        options = self.options
        ratios = sample_mask_ratio(
            ratio_rng, batch_size, options.schedule, min_ratio=options.min_mask_rate, num_tokens=self.num_tokens
        )
        hidden = ratio_mask(mask_rng, self.num_tokens, ratios).mask
        labels, context, lengths = self.conditions(drop_rng, batch, self.options.cond_dropout if train else 0.0)
        logits = self.logits(params, jnp.where(hidden, self.mask_id, codes), labels, context, lengths)
        smooth = optax.smooth_labels(jax.nn.one_hot(codes, self.options.vocab_size), self.options.label_smoothing)
        per_token = optax.softmax_cross_entropy(logits, smooth)
        loss = masked_mean(per_token, hidden)
        accuracy = masked_mean(jnp.argmax(logits, -1) == codes, hidden)
        return loss, {"loss": loss, "masked_accuracy": accuracy, "mask_ratio": jnp.mean(hidden.astype(jnp.float32))}

    # --- Generation -------------------------------------------------------------------

    def sampler(
        self,
        num_steps: int | None = None,
        guidance: float | None = None,
        guidance_schedule: str | None = None,
        choice_temperature: float | None = None,
        sample_temperature: float | None = None,
    ) -> Callable[..., jax.Array]:
        """A jitted `fn(params, rng, labels [B], codes [B, N] | None, context, context_lengths) -> codes [B, h, w]`.

        Unset arguments come from the config's `sample` section. `codes` is a partial map
        (mask id where unknown) for editing / inpainting; None generates from scratch.
        Keep the returned function to reuse its compilation.
        """
        s = self.sample_options
        num_steps = s.steps if num_steps is None else num_steps
        guidance = s.guidance if guidance is None else guidance
        guidance_schedule = s.guidance_schedule if guidance_schedule is None else guidance_schedule
        choice_temperature = s.choice_temperature if choice_temperature is None else choice_temperature
        sample_temperature = s.sample_temperature if sample_temperature is None else sample_temperature
        h, w = self.options.token_grid

        def sample(params, rng, labels, codes=None, context=None, context_lengths=None):
            batch_size = labels.shape[0] if labels is not None else context.shape[0]
            if codes is None:
                codes = jnp.full((batch_size, self.num_tokens), self.mask_id, jnp.int32)
            codes = codes.reshape(batch_size, self.num_tokens)

            def logits_fn(current, conditional):
                if conditional:
                    return self.logits(params, current, labels, context, context_lengths)
                null = None if labels is None else jnp.full_like(labels, self.null_class)
                none = None if context is None else jnp.zeros((batch_size,), jnp.int32)
                return self.logits(params, current, null, context, none)

            tokens_to_logits = guided_tokens_to_logits(logits_fn, num_steps, guidance, guidance_schedule)
            state = decode(
                codes,
                rng,
                tokens_to_logits,
                mask_id=self.mask_id,
                num_steps=num_steps,
                choice_temperature=choice_temperature,
                sample_temperature=sample_temperature,
                schedule=self.options.schedule,
            )
            return state.final.reshape(batch_size, h, w)

        return jax.jit(sample)

    def generate(self, params: Params, rng: jax.Array, labels: jax.Array | None, **kwargs) -> jax.Array:
        """Codes `[B, h, w]` for class `labels` `[B]`; `kwargs` as `sampler`'s and the sampler's `codes`, `context`."""
        sampler_keys = ("num_steps", "guidance", "guidance_schedule", "choice_temperature", "sample_temperature")
        fn = self.sampler(**{k: kwargs.pop(k) for k in sampler_keys if k in kwargs})
        return fn(params, rng, None if labels is None else jnp.asarray(labels, jnp.int32), **kwargs)

    def decode_images(self, params: Params, codes: jax.Array) -> jax.Array:
        """Codes `[B, h, w]` -> images `[B, H, W, C]` (normalized) with the frozen tokenizer's decoder."""
        if self.tokenizer is None:
            raise ValueError("decode_images needs a tokenizer: set tokenizer_config and maskgit.tokenizer_workdir")
        return self.tokenizer.detokenize(params["tokenizer"], codes)


@register_method("maskgit", protocols=("generation",))
def build_maskgit(config: ml_collections.ConfigDict) -> MaskGIT:
    return MaskGIT.from_config(config)


__all__ = ["MaskGIT", "build_maskgit", "default_config"]
