"""Add-on terms: what a variant adds to a base method (MAE, ...), each in a file of its own.

A base method is its paper's method. A variant of the field (HPM, SupMAE, LocalMIM, DMJD, ...)
is the base plus one or more *terms*: a term has an options section of its own (`knob`s, one
config section, named by `section`), may own parameters (under `params[section]`), and adds
a loss and metrics computed from the base's forward pass (a `Step`). A few hooks let a term
change how a step's masks are drawn (`draw`, `mask_inputs`), how a batch is laid out (`expand`),
replace the objective (`objective`: CLM on BERT), or keep non-trained state (an EMA teacher, a
running loss table: `wrap`, `trainable`, `after_step`). Every hook has a do-nothing default, so a
term overrides only what it needs; docs/architecture.md has the table of hooks.

A term registers itself for a base method by name:

    @register_term("mae")
    class LabelTerm(Term):
        section = "supervised"
        options = LabelLossOptions

        @classmethod
        def build(cls, options, base): ...   # the term, or None when the options turn it off

`default_config()` of the base gets one section per registered term (`terms_sections`), and
`build_terms` builds the ones the config turns on, so a new term touches its own file, an
experiment file and a test: the base method's `loss` never names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import flax.linen as nn
import jax
import ml_collections

from mmjax.config import ConfigError, dataclass_from_config, section_config
from mmjax.masking.mask import Mask
from mmjax.methods.protocol import STATE_INPUTS, Batch, Params

_TERMS: dict[str, dict[str, type[Term]]] = {}


@dataclasses.dataclass(frozen=True)
class Drawn:
    """A step's masks as a term draws them: the `Mask`, the tokens the loss counts `[B, N]`, and
    optionally the only tokens the decoder computes (`decode_ids` `[B, S]`)."""

    mask: Mask
    counted: jax.Array
    decode_ids: jax.Array | None = None


@dataclasses.dataclass(frozen=True)
class Step:
    """One forward pass of a base method, as its terms see it.

    Attributes:
      batch: the batch the model saw (after every term's `expand`).
      mask: the step's `Mask` (MLM: its `MLMCorruption`).
      counted: bool `[B, N]`, the tokens the base loss counts (MLM: `[B, P]`, the predicted positions).
      pred: the base's predictions `[B, N, D]`.
      target: the base's targets `[B, N, D]`.
      out: the model's named intermediates (MAE: `encoded`, `block{i}`, `decoder_tokens`; MLM: `hidden`).
      params: the whole params of the method (a term reads its own at `params[term.section]`).
    """

    batch: Batch
    mask: Mask
    counted: jax.Array
    pred: jax.Array
    target: jax.Array
    out: dict[str, jax.Array]
    params: Params


class Term:
    """An add-on term of a base method; every hook defaults to doing nothing.

    Class attributes: `section` (its config section and its params entry), `options` (the
    frozen dataclass of its knobs), `supplies` (the score maps its `mask_inputs` can give).
    """

    section: ClassVar[str] = ""
    options: ClassVar[type | None] = None
    supplies: ClassVar[tuple[str, ...]] = ()  # score maps it gives guided mask kinds (`mask_inputs`)

    @classmethod
    def build(cls, options: Any, base: Any) -> Term | None:
        """The term for these options, or None when they turn it off (the default: never on).

        `base` is the base method as configured, without terms (MAE: `model_config`,
        `decoder_config`, `mask_part`, `loss_part`, `mask_ratio`, `total_steps`, ...).
        """
        del options, base
        return None

    def expand(self, batch: Batch) -> Batch:
        """The batch the model sees (DMJD repeats it once per view)."""
        return batch

    def draw(self, base: Any, rng: jax.Array, images: jax.Array, train: bool, noise: jax.Array | None) -> Drawn | None:
        """The step's masks, when this term draws them (else None: the base's mask part does).

        `train`: a training step (not `predict`); `noise`: the caller's fixed random-mask noise, if any.
        """
        del base, rng, images, train, noise
        return None

    def init(self, rng: jax.Array, step: Step) -> Params | None:
        """This term's own params (flax-boxed, as `Module.init` returns them), from the base's init step."""
        del rng, step
        return None

    def loss(self, step: Step) -> tuple[jax.Array | None, dict[str, jax.Array]]:
        """What this term adds to the loss (already weighted; None: nothing) and its metrics."""
        del step
        return None, {}

    def mask_inputs(self, base: Any, params: Params, inputs: Any) -> dict[str, Any]:
        """What the base's mask drawing reads from this term before the step. MAE: `scores` (maps
        `[B, N]` of the images `inputs`) and `step` (a curriculum's position), the EMA teacher's;
        MLM: `log_weights` `[V]` of the token ids (WSBERT's running losses)."""
        del base, params, inputs
        return {}

    def scores(self, params: Params, out: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Score maps `[B, N]` this term computes from a forward's intermediates (HPM's predicted loss)."""
        del params, out
        return {}

    def wrap(self, params: Params) -> Params:
        """The params with this term's untrained state added (an EMA teacher's copy)."""
        return params

    def wrap_axes(self, axes: Params) -> Params:
        """`wrap` on the logical-axis tree."""
        return axes

    def trainable(self, flags: Params) -> Params:
        """The trainable flags with this term's untrained state turned off."""
        return flags

    def after_step(self, params: Params, state_inputs: Any = None) -> Params:
        """A non-gradient update after each optimizer step (an EMA); `state_inputs` is what this
        term's `loss` returned under `metrics[STATE_INPUTS]` (or None)."""
        del state_inputs
        return params

    def objective(self, base: Any, params: Params, batch: Batch, rng: jax.Array, train: bool) -> Any:
        """`(loss, metrics)` when this term replaces the base's objective (CLM on BERT), else None."""
        del base, params, batch, rng, train
        return None


def register_term(base: str) -> Callable[[type[Term]], type[Term]]:
    """Class decorator: register a `Term` subclass for base method `base` under its `section`."""

    def wrap(cls: type[Term]) -> type[Term]:
        if not cls.section:
            raise ValueError(f"term {cls.__name__} has no section name")
        terms = _TERMS.setdefault(base, {})
        if cls.section in terms and terms[cls.section] is not cls:
            raise ValueError(f"{base} already has a term in section {cls.section!r} ({terms[cls.section].__name__})")
        terms[cls.section] = cls
        return cls

    return wrap


def registered_terms(base: str) -> dict[str, type[Term]]:
    """The term classes registered for `base`, by section name (sorted)."""
    return dict(sorted(_TERMS.get(base, {}).items()))


def terms_sections(base: str) -> dict[str, ml_collections.ConfigDict]:
    """One config section per registered term of `base` that has options, with its defaults."""
    return {name: section_config(cls.options) for name, cls in registered_terms(base).items() if cls.options}


def supplied_scores(base: str) -> tuple[str, ...]:
    """The score maps the registered terms of `base` can give guided mask kinds."""
    return tuple(name for cls in registered_terms(base).values() for name in cls.supplies)


def build_terms(name: str, config: Any, base: Any) -> tuple[Term, ...]:
    """The terms of base method `name` that `config` turns on, in section order; `base` is the method without terms."""
    terms = []
    for section, cls in registered_terms(name).items():
        options = None
        if cls.options is not None:
            options = dataclass_from_config(cls.options, config.get(section) or {}, section)
        term = cls.build(options, base)
        if term is not None:
            terms.append(term)
    for hook, what in (("draw", "draw the masks of a step"), ("objective", "replace the objective")):
        owners = [t.section for t in terms if getattr(type(t), hook) is not getattr(Term, hook)]
        if len(owners) > 1:
            raise ConfigError(f"{' and '.join(owners)} both {what}; expected at most one of them on")
    return tuple(terms)


def expand(terms: tuple[Term, ...], batch: Batch) -> Batch:
    for term in terms:
        batch = term.expand(batch)
    return batch


def draw(
    terms: tuple[Term, ...], base: Any, rng: jax.Array, images: jax.Array, train: bool, noise: jax.Array | None
) -> Drawn | None:
    """The masks a term draws (at most one term draws them), or None."""
    for term in terms:
        drawn = term.draw(base, rng, images, train, noise)
        if drawn is not None:
            return drawn
    return None


def init_terms(terms: tuple[Term, ...], rng: jax.Array, step: Step) -> Params:
    """`{section: boxed params}` of the terms that own params; each term's key folds in its position."""
    owned = {}
    for i, term in enumerate(terms):
        params = term.init(jax.random.fold_in(rng, i + 1), step)
        if params is not None:
            owned[term.section] = params
    return owned


def add_terms(
    terms: tuple[Term, ...], loss: jax.Array, metrics: dict, step: Step, base_name: str = "reconstruction_loss"
) -> tuple[jax.Array, dict]:
    """The base `loss` plus every term's; metrics gain each term's, and `base_name` (the base's loss) when
    any term adds to the loss. A term's `STATE_INPUTS` go to `metrics[STATE_INPUTS][section]`."""
    total, metrics, state = loss, dict(metrics), {}
    for term in terms:
        extra, more = term.loss(step)
        if STATE_INPUTS in more:
            more = dict(more)
            state[term.section] = more.pop(STATE_INPUTS)
        metrics.update(more)
        if extra is not None:
            metrics.setdefault(base_name, loss)
            total = total + extra
    if base_name in metrics:  # some term added to the loss
        metrics["loss"] = total
    if state:
        metrics[STATE_INPUTS] = state
    return total, metrics


def objective(
    terms: tuple[Term, ...], base: Any, params: Params, batch: Batch, rng: jax.Array, train: bool
) -> tuple[jax.Array, dict] | None:
    """The objective a term replaces the base's with (at most one term does), or None."""
    for term in terms:
        replaced = term.objective(base, params, batch, rng, train)
        if replaced is not None:
            return replaced
    return None


def wrap(terms: tuple[Term, ...], params: Params, axes: bool = False) -> Params:
    for term in terms:
        params = term.wrap_axes(params) if axes else term.wrap(params)
    return params


def trainable(terms: tuple[Term, ...], params: Params) -> Params:
    flags = jax.tree.map(lambda _: True, params)
    for term in terms:
        flags = term.trainable(flags)
    return flags


def mask_inputs(terms: tuple[Term, ...], base: Any, params: Params, inputs: Any) -> dict[str, Any]:
    """Every term's `mask_inputs` in one dict (`scores` maps merged across terms)."""
    merged: dict[str, Any] = {}
    for term in terms:
        for name, value in term.mask_inputs(base, params, inputs).items():
            merged[name] = {**merged.get(name, {}), **value} if name == "scores" else value
    return merged


def after_step(terms: tuple[Term, ...], params: Params, state_inputs: Any = None) -> Params:
    """Every term's `after_step`, each with its own `STATE_INPUTS` (from `add_terms`)."""
    for term in terms:
        params = term.after_step(params, (state_inputs or {}).get(term.section))
    return params


class WithTerms:
    """What a base method with add-on terms shares; the base gives `terms` and `init_step(rng, batch)`
    (its model's boxed params and the `Step` of an init forward pass) and `abstract_batch()`."""

    terms: tuple[Term, ...]

    def term(self, section: str) -> Term | None:
        """The add-on term of config section `section`, if on."""
        return next((t for t in self.terms if t.section == section), None)

    def _boxed(self, rng: jax.Array, batch: Batch) -> Params:
        params, step = self.init_step(rng, batch)
        return {**params, **init_terms(self.terms, rng, step)}

    def init(self, rng: jax.Array, batch: Batch) -> Params:
        """The model's params, each term's at `params[section]`, and the terms' untrained state."""
        return wrap(self.terms, nn.meta.unbox(self._boxed(rng, batch)))

    def param_axes(self) -> Params:
        shapes = jax.eval_shape(self._boxed, jax.random.key(0), self.abstract_batch())
        return wrap(self.terms, nn.get_partition_spec(shapes), axes=True)

    def trainable(self, params: Params) -> Params:
        """Every leaf but a term's untrained state (an EMA teacher and its step count)."""
        return trainable(self.terms, params)

    def after_step(self, params: Params, state_inputs: Any, step: jax.Array) -> Params:
        """The terms' non-gradient updates (an EMA teacher's, a running loss table's)."""
        del step
        return after_step(self.terms, params, state_inputs)


__all__ = [
    "WithTerms",
    "supplied_scores",
    "Drawn",
    "Step",
    "Term",
    "add_terms",
    "after_step",
    "build_terms",
    "draw",
    "expand",
    "init_terms",
    "objective",
    "mask_inputs",
    "register_term",
    "registered_terms",
    "terms_sections",
    "trainable",
    "wrap",
]
