"""Named end-of-run evaluations (protocols), and which ones a method gets by default.

`config.eval.protocols` names the protocols to run, in order (a tuple of names); the empty
tuple `()` means "this method's defaults", the `protocols` it declared where it is registered
(`register_method(name, protocols=...)`; the image protocols, `IMAGE_PROTOCOLS`, by default).
Each protocol is a function `(config, method, params, workdir) -> (rows, files)` over the method's public functions
(`features`, `reconstruct`, `tokenize`, `impute`, `sampler`, ...); it prints progress only
(the caller prints the table and writes `eval.json`), writes files only on process 0, and
gets host-local parameters. A protocol may declare when it applies (`applies(config, method)`:
switched on in `eval.*`, and the method has what it measures); one that does not is neither
announced nor run (`applicable_protocols`).

Registered protocols:

- `linear_probe`: image encoders (`eval.probe`): linear-probe accuracy of the trained encoder,
  a random one and raw pixels (`mmjax.evaluate.images.probe_table`).
- `knn`: the same three rows scored by a weighted kNN (`mmjax.evaluate.knn`).
- `tokenizer`: a tokenizer's reconstruction error and code statistics (`mmjax.evaluate.tokenizers`).
- `reconstruction_figure`: `reconstructions.png`, labelled rows of `method.reconstruct` (`eval.figure`).
- `kind_probe`: the linear probe for encoders of other data kinds, video and audio (`eval.probe`).
- `text_mlm`: held-out masked-token accuracy and cross-entropy against unigram (`mmjax.evaluate.text`).
- `tables_imputation`: impute the `tables` kind's table, RMSE on removed cells (`mmjax.evaluate.tables`).
- `series`: imputation and forecasting against baselines, UCR probes (`mmjax.evaluate.series`).
- `points_probe`: linear probe on the shape class of point clouds (`mmjax.evaluate.points`).
- `classification`: a fine-tuned classifier's accuracy on the test split, against the most frequent
  class (`mmjax.evaluate.images.classification_results`).
- `generation`: class-conditional samples, `samples.png` and sample metrics (`mmjax.evaluate.generation`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import jax

from mmjax.config import ConfigError
from mmjax.evaluate.generation import class_conditional_results
from mmjax.evaluate.images import (
    classification_results,
    knn_table,
    probe_table,
    random_image_params,
    reconstruction_figure,
)
from mmjax.evaluate.kind_probe import encoder_probe_results
from mmjax.evaluate.points import evaluate_points
from mmjax.evaluate.report import announce
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


def register_protocol(
    name: str, applies: Callable[[Any, Any], bool] | None = None
) -> Callable[[EvalProtocol], EvalProtocol]:
    """Decorator: `@register_protocol("knn")` on a function `(config, method, params, workdir) -> (rows, files)`.

    `applies(config, method)` says whether it has anything to do for that run (default: always).
    """

    def wrap(fn: EvalProtocol) -> EvalProtocol:
        if name in _PROTOCOLS:
            raise ValueError(f"evaluation protocol {name!r} is already registered")
        _PROTOCOLS[name] = fn
        _APPLIES[name] = applies or (lambda config, method: True)
        return fn

    return wrap


def applicable_protocols(config: Any, method: Any) -> tuple[str, ...]:
    """The protocols of `protocols_for(config)` that apply to this run, in order."""
    return tuple(name for name in protocols_for(config) if _APPLIES[name](config, method))


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


def protocols_for(config: Any) -> tuple[str, ...]:
    """The protocols `config` asks for: `eval.protocols`, or with `()` the method's defaults.

    A config saved before `eval.protocols` existed (an old checkpoint's) has no such field: the defaults.
    """
    names = config.eval.get("protocols", ())  # absent from configs saved before the field existed
    if names is None or (isinstance(names, Sequence) and not isinstance(names, str) and len(names) == 0):
        return check_protocols(method_protocols(config.method))
    return check_protocols(names)


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


def _probe_on(config: Any, method: Any) -> bool:
    return bool(config.eval.probe)


@register_protocol("linear_probe", applies=_probe_on)
def linear_probe_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    return probe_table(config, method, params, random_image_params(config, method)), {}


@register_protocol("knn")
def knn_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    return knn_table(config, method, params, random_image_params(config, method)), {}


@register_protocol("classification", applies=lambda config, method: hasattr(method, "logits"))
def classification_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    return classification_results(config, method, params), {}


@register_protocol("tokenizer", applies=lambda config, method: hasattr(method, "tokenize"))
def tokenizer_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    announce("tokenizer reconstruction of the test split")
    if hasattr(method, "latent_dim"):
        return latent_tokenizer_results(config, method, params), {}
    return tokenizer_results(config, method, params), {}


@register_protocol(
    "reconstruction_figure", applies=lambda config, method: bool(config.eval.figure) and hasattr(method, "reconstruct")
)
def reconstruction_figure_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    path = os.path.join(workdir, "reconstructions.png")
    if jax.process_index() == 0:
        reconstruction_figure(config, method, params, path)
    return [], {"figure": path}


# --- Other data kinds ---------------------------------------------------------------------


@register_protocol("kind_probe", applies=_probe_on)
def kind_probe_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    return encoder_probe_results(config, method, params), {}


@register_protocol("text_mlm")
def text_mlm_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    return evaluate_mlm(config, method, params), {}


@register_protocol("tables_imputation")
def tables_imputation_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    return evaluate_tables(config, method, params, workdir), {"imputed table": os.path.join(workdir, IMPUTED_CSV)}


@register_protocol("series")
def series_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    return evaluate_series(config, method, params), {}


@register_protocol("points_probe")
def points_probe_protocol(config: Any, method: Any, params: Any, workdir: str) -> Outcome:
    return evaluate_points(config, method, params), {}


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
    "check_protocols",
    "protocols_for",
    "register_protocol",
    "run_protocols",
]
