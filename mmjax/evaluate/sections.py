"""The `eval` section and the sections of the evaluation protocols (`eval.<protocol>.*`).

`eval` holds what every evaluation shares: which protocols run (`eval.protocols`, the one
switch), how often during training (`eval.every_steps`) and the batch size. A protocol with
settings of its own declares them in a section class here and names it where it is
registered (`register_protocol(name, section=...)`, `mmjax.evaluate.protocols`); the section
then sits at `eval.<name>` in every config, each field a `knob` settable from the command
line (`--config.eval.linear_probe.steps=200`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mmjax.config import knob, moved_field
from mmjax.methods.registry import method_protocols


@dataclasses.dataclass(frozen=True)
class EvalSection:
    """`eval`: the evaluations of a run (`mmjax.evaluate.evaluate_pretraining`), at its end and every `every_steps`."""

    protocols: tuple[str, ...] = knob(
        (), "evaluations run, in order; () = none (training_sections sets the method's own)"
    )
    every_steps: int = knob(
        0,
        "also evaluate every this many steps during training (each one a checkpoint step too); 0 = at the end only",
        low=0,
    )
    batch_size: int = knob(250, "examples per evaluation batch", low=1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class FeatureSection:
    """A protocol scoring pooled encoder features."""

    pool: str = knob("mean", "features scored: mean of the final tokens, cls, mean_max (points)")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProbeSection(FeatureSection):
    """A linear probe: multinomial logistic regression fit full-batch on the train split's features."""

    steps: int = knob(500, "full-batch optimizer steps of the linear probe", low=1)
    l2: float = knob(1e-4, "L2 penalty of the linear probe", low=0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class LowShotSection(ProbeSection):
    """`eval.lowshot_probe`: the linear probe fit on a few labelled train examples per class."""

    labels_per_class: int = knob(10, "labelled train examples of each class the probe is fit on", low=1)
    draws: int = knob(5, "random draws of those examples; the accuracy is their mean", low=1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class KnnSection(FeatureSection):
    """`eval.knn`: weighted k-nearest-neighbour classification (InstDisc / DINO)."""

    k: int = knob(20, "neighbours (at most the train split's size)", low=1)
    temperature: float = knob(0.07, "votes weighted exp(cosine similarity / temperature)", low=0, low_open=True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class KindProbeSection(ProbeSection):
    """`eval.kind_probe`: the linear probe of video and audio encoders."""

    raw_input: bool = knob(True, "also probe the flattened input (a baseline row)")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SeriesSection(ProbeSection):
    """`eval.series`: imputation and forecasting on test windows, and linear probes on UCR sets."""

    stride: int = knob(4, "step between evaluation windows", low=1)
    horizon_patches: int = knob(2, "patches forecast", low=1)


@dataclasses.dataclass(frozen=True)
class FigureSection:
    """`eval.reconstruction_figure`: the labelled reconstruction figure."""

    examples: int = knob(8, "images in the figure", low=1)


# The flat `eval` knobs before each protocol had its section (docs/architecture.md, "Renamed sections").
_FLAT = {
    "probe": "list linear_probe / kind_probe in eval.protocols, or leave them out",
    "figure": "list reconstruction_figure in eval.protocols, or leave it out",
    "probe_steps": "eval.<protocol>.steps (linear_probe, kind_probe, points_probe, series)",
    "probe_l2": "eval.<protocol>.l2 (linear_probe, kind_probe, points_probe, series)",
    "probe_pool": "eval.<protocol>.pool (linear_probe, knn, kind_probe, points_probe, series)",
    "probe_raw_input": "eval.kind_probe.raw_input",
    "figure_examples": "eval.reconstruction_figure.examples",
    "stride": "eval.series.stride",
    "horizon_patches": "eval.series.horizon_patches",
}
for _old, _now in _FLAT.items():
    moved_field(f"eval.{_old}", _now)

_PROBES = ("linear_probe", "kind_probe", "points_probe", "series")


def upgrade_saved_eval(config: dict[str, Any]) -> dict[str, Any]:
    """A config saved with the flat `eval` knobs (before the protocols' sections), in today's form.

    What the run evaluated then, it evaluates now: `eval.protocols=()` meant the method's own,
    less the probes when `eval.probe` was off and the figure when `eval.figure` was; `probe_steps`,
    `probe_l2`, `probe_pool` were every probe's. A config without the flat knobs is returned as is.
    """
    old = config.get("eval")
    if not isinstance(old, dict) or not set(old) & set(_FLAT):
        return config
    ev = {k: v for k, v in old.items() if k not in _FLAT}
    names = tuple(ev.get("protocols") or method_protocols(config.get("method", "")))
    off = set()
    if not old.get("probe", True):
        off |= {"linear_probe", "kind_probe"}
    if not old.get("figure", True):
        off.add("reconstruction_figure")
    ev["protocols"] = tuple(name for name in names if name not in off)
    flat_probe = (("probe_steps", "steps"), ("probe_l2", "l2"), ("probe_pool", "pool"))
    probe = {new: old[flat] for flat, new in flat_probe if old.get(flat) is not None}
    for name in _PROBES:
        ev[name] = {**ev.get(name, {}), **probe}
    if "probe_pool" in old:
        ev["knn"] = {**ev.get("knn", {}), "pool": old["probe_pool"]}
    moved = (("probe_raw_input", "kind_probe", "raw_input"), ("figure_examples", "reconstruction_figure", "examples"))
    moved += (("stride", "series", "stride"), ("horizon_patches", "series", "horizon_patches"))
    for flat, section, field in moved:
        if flat in old:
            ev[section] = {**ev.get(section, {}), field: old[flat]}
    return {**config, "eval": ev}


__all__ = [
    "EvalSection",
    "upgrade_saved_eval",
    "FeatureSection",
    "FigureSection",
    "KindProbeSection",
    "KnnSection",
    "LowShotSection",
    "ProbeSection",
    "SeriesSection",
]
