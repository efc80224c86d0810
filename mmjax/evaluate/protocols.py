"""Named evaluations (protocols), each with its own config section, and the `eval` section that switches them.

`config.eval.protocols` names the protocols to run, in order (a tuple of names; `()` runs none).
`training_sections` fills it with the protocols the method declared where it is registered
(`register_method(name, protocols=...)`; the image protocols, `IMAGE_PROTOCOLS`, by default), so
a resolved config shows what will run. Each protocol is a function `(config, method, params,
workdir) -> (rows, files)` over the method's public functions (`features`, `reconstruct`,
`tokenize`, `impute`, `sampler`, ...); it prints progress only (the caller prints the table and
writes `eval.json`), writes files only on process 0, and gets host-local parameters. A protocol
may declare when it applies (`applies(config, method)`: the method has what it measures); one
that does not is announced as skipped and not run (`applicable_protocols`). A protocol with
settings declares a section (`mmjax.evaluate.sections`) at registration: `eval.<name>.*`.

Registered protocols (settings):

- `linear_probe` (`eval.linear_probe`: steps, l2, pool): image encoders: linear-probe accuracy of the
  trained encoder, a random one and raw pixels (`mmjax.evaluate.images.probe_table`).
- `knn` (`eval.knn`: k, temperature, pool): the same three rows scored by a weighted kNN (`mmjax.evaluate.knn`).
- `lowshot_probe` (`eval.lowshot_probe`: labels_per_class, draws, steps, l2, pool): the linear probe fit on a
  few labels per class (10 by default, the mean of 5 draws), the same three rows.
- `tokenizer`: a tokenizer's reconstruction error and code statistics (`mmjax.evaluate.tokenizers`).
- `reconstruction_figure` (`eval.reconstruction_figure`: examples): `reconstructions.png`, labelled rows
  of `method.reconstruct`.
- `kind_probe` (`eval.kind_probe`: steps, l2, pool, raw_input): the linear probe for encoders of other data
  kinds, video and audio.
- `text_mlm`: held-out masked-token accuracy and cross-entropy against unigram (`mmjax.evaluate.text`).
- `tables_imputation`: impute the `tables` kind's table, RMSE on removed cells (`mmjax.evaluate.tables`).
- `series` (`eval.series`: stride, horizon_patches, steps, l2, pool): imputation and forecasting against
  baselines, UCR probes (`mmjax.evaluate.series`).
- `points_probe` (`eval.points_probe`: steps, l2, pool): linear probe on the shape class of point clouds
  (`mmjax.evaluate.points`).
- `classification`: a fine-tuned classifier's accuracy on the test split, against the most frequent
  class (`mmjax.evaluate.images.classification_results`).
- `generation`: class-conditional samples, `samples.png` and sample metrics (`mmjax.evaluate.generation`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import ml_collections

from mmjax.config import ConfigError, complete_section, dataclass_from_config, section_config, unknown_field_error
from mmjax.evaluate.generation import class_conditional_results
from mmjax.evaluate.images import (
    classification_results,
    knn_table,
    lowshot_table,
    probe_table,
    random_image_params,
    reconstruction_figure,
)
from mmjax.evaluate.kind_probe import encoder_probe_results
from mmjax.evaluate.points import evaluate_points
from mmjax.evaluate.report import announce
from mmjax.evaluate.sections import (
    EvalSection,
    FigureSection,
    KindProbeSection,
    KnnSection,
    LowShotSection,
    ProbeSection,
    SeriesSection,
)
from mmjax.evaluate.series import evaluate_series
from mmjax.evaluate.tables import IMPUTED_CSV, evaluate_tables
from mmjax.evaluate.text import evaluate_mlm
from mmjax.evaluate.tokenizers import latent_tokenizer_results, tokenizer_results
from mmjax.methods.protocol import EvalResult
from mmjax.methods.registry import IMAGE_PROTOCOLS, method_protocols

Outcome = tuple[list[EvalResult], dict[str, str]]
EvalProtocol = Callable[[Any, Any, Any, str], Outcome]

_PROTOCOLS: dict[str, EvalProtocol] = {}
_APPLIES: dict[str, Callable[[Any, Any], bool]] = {}
_SECTIONS: dict[str, type] = {}


def register_protocol(
    name: str, *, section: type | None = None, applies: Callable[[Any, Any], bool] | None = None
) -> Callable[[EvalProtocol], EvalProtocol]:
    """Decorator: `@register_protocol("knn", section=KnnSection)` on `(config, method, params, workdir) -> Outcome`.

    `section`: a frozen dataclass of `knob`s, the protocol's settings at `eval.<name>` (read them as
    `config.eval[name]`). `applies(config, method)` says whether it has anything to do for that run
    (default: always).
    """

    def wrap(fn: EvalProtocol) -> EvalProtocol:
        if name in _PROTOCOLS:
            raise ValueError(f"evaluation protocol {name!r} is already registered")
        if name in {f.name for f in dataclasses.fields(EvalSection)}:
            raise ValueError(f"evaluation protocol {name!r} would hide the field eval.{name}")
        _PROTOCOLS[name] = fn
        _APPLIES[name] = applies or (lambda config, method: True)
        if section is not None:
            _SECTIONS[name] = section
        return fn

    return wrap


def protocol_sections() -> dict[str, type]:
    """`{protocol: section class}` of every registered protocol that has settings."""
    return dict(_SECTIONS)


def eval_config(method: str) -> ml_collections.ConfigDict:
    """The `eval` section of a run of `method`: its protocols, then every protocol's section with its defaults."""
    section = section_config(EvalSection, protocols=method_protocols(method))
    for name, declaration in _SECTIONS.items():
        section[name] = section_config(declaration)
    return section


def check_eval_section(section: Any) -> EvalSection:
    """Check `eval` and each protocol's section in it (a missing field or section gets its default, in place).

    Raises `ConfigError` naming the first bad field (`eval.knn.k=0: expected an integer >= 1`).
    """
    own = [f.name for f in dataclasses.fields(EvalSection)]
    unknown = sorted(set(section) - set(own) - set(_SECTIONS))
    if unknown:
        raise unknown_field_error("eval", unknown, own + list(_SECTIONS))
    complete_section(EvalSection, section, "eval")
    for name, declaration in _SECTIONS.items():
        if name not in section:
            with section.unlocked():
                section[name] = section_config(declaration)
        complete_section(declaration, section[name], f"eval.{name}")
        dataclass_from_config(declaration, section[name], f"eval.{name}")
    checked = dataclass_from_config(EvalSection, {k: section[k] for k in own}, "eval")
    check_protocols(checked.protocols)
    return checked


def applicable_protocols(config: Any, method: Any) -> tuple[str, ...]:
    """The protocols of `eval.protocols` that apply to this run, in order."""
    return tuple(name for name in requested_protocols(config) if _APPLIES[name](config, method))


def available_protocols() -> list[str]:
    return sorted(_PROTOCOLS)


def check_protocols(names: Any) -> tuple[str, ...]:
    """`names` as a tuple of registered protocol names; a `ConfigError` naming `eval.protocols` otherwise."""
    if isinstance(names, str) or not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
        raise ConfigError(
            f"eval.protocols={names!r}: expected a tuple of protocol names; registered: {available_protocols()}"
        )
    unknown = [n for n in names if n not in _PROTOCOLS]
    if unknown:
        raise ConfigError(
            f"eval.protocols={tuple(names)!r}: {unknown[0]!r} is not an evaluation protocol; "
            f"registered: {available_protocols()}"
        )
    return tuple(names)


def requested_protocols(config: Any) -> tuple[str, ...]:
    """The protocols `config.eval.protocols` names, checked."""
    return check_protocols(config.eval.protocols)


def run_protocols(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    """Run the protocols of `applicable_protocols` in order: `(rows, {name: file path})`.

    `params` must be host-local (see `mmjax.evaluate.pretraining.host_params`); nothing is printed
    but progress, nothing written but each protocol's own files (process 0).
    """
    results: list[EvalResult] = []
    files: dict[str, str] = {}
    for name in applicable_protocols(config, method):
        rows, written = _PROTOCOLS[name](config, method, params, workdir)
        results += rows
        files.update(written)
    return results, files


# --- Images -------------------------------------------------------------------------------


def settings(config: Any, name: str) -> Any:
    """Protocol `name`'s section of `config.eval`, as its declared dataclass (checked)."""
    return dataclass_from_config(_SECTIONS[name], config.eval[name], f"eval.{name}")


def _reconstructs(config: Any, method: Any) -> bool:
    return hasattr(method, "reconstruct")


@register_protocol("linear_probe", section=ProbeSection)
def linear_probe_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    probe = settings(config, "linear_probe")
    return probe_table(config, method, params, random_image_params(config, method), probe), {}


@register_protocol("lowshot_probe", section=LowShotSection)
def lowshot_probe_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    lowshot = settings(config, "lowshot_probe")
    return lowshot_table(config, method, params, random_image_params(config, method), lowshot), {}


@register_protocol("knn", section=KnnSection)
def knn_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    return knn_table(config, method, params, random_image_params(config, method), settings(config, "knn")), {}


@register_protocol("classification", applies=lambda config, method: hasattr(method, "logits"))
def classification_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    return classification_results(config, method, params), {}


@register_protocol("tokenizer", applies=lambda config, method: hasattr(method, "tokenize"))
def tokenizer_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    announce("tokenizer reconstruction of the test split")
    if hasattr(method, "latent_dim"):
        return latent_tokenizer_results(config, method, params), {}
    return tokenizer_results(config, method, params), {}


@register_protocol("reconstruction_figure", section=FigureSection, applies=_reconstructs)
def reconstruction_figure_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    path = os.path.join(workdir, "reconstructions.png")
    if jax.process_index() == 0:
        reconstruction_figure(config, method, params, path, settings(config, "reconstruction_figure").examples)
    return [], {"figure": path}


# --- Other data kinds ---------------------------------------------------------------------


@register_protocol("kind_probe", section=KindProbeSection)
def kind_probe_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    return encoder_probe_results(config, method, params, settings(config, "kind_probe")), {}


@register_protocol("text_mlm")
def text_mlm_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    return evaluate_mlm(config, method, params), {}


@register_protocol("tables_imputation")
def tables_imputation_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    return evaluate_tables(config, method, params, workdir), {"imputed table": os.path.join(workdir, IMPUTED_CSV)}


@register_protocol("series", section=SeriesSection)
def series_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    return evaluate_series(config, method, params, settings(config, "series")), {}


@register_protocol("points_probe", section=ProbeSection)
def points_probe_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    return evaluate_points(config, method, params, settings(config, "points_probe")), {}


def _generates(config: Any, method: Any) -> bool:
    return getattr(method, "tokenizer", None) is not None and bool(method.options.num_classes)


@register_protocol("generation", applies=_generates)
def generation_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    return class_conditional_results(config, method, params, workdir), {}


__all__ = [
    "IMAGE_PROTOCOLS",
    "EvalProtocol",
    "applicable_protocols",
    "available_protocols",
    "check_eval_section",
    "check_protocols",
    "eval_config",
    "protocol_sections",
    "register_protocol",
    "requested_protocols",
    "run_protocols",
    "settings",
]
