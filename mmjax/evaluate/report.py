"""Evaluation results: one table on the console, `eval.json` + `eval.md` in the workdir, one table over runs.

Every evaluation returns a list of `EvalResult` rows (protocol, name, metric, value, baseline,
split). Shares (accuracy, codebook usage) are stored as fractions and printed as percentages,
everything else with four significant digits, so every table reads the same way.

`eval.json`:

    {"step": 2000, "method": "mae", "data": "mnist", "results": [{"protocol": "linear probe",
     "name": "mae encoder", "metric": "accuracy", "value": 0.93, "baseline": false,
     "split": "test"}, ...], "files": {"figure": "reconstructions.png"},
     "history": [{"step": 500, "results": [...]}, {"step": 2000, "results": [...]}]}

The top level is the evaluation written last; `history` holds every evaluation of the run by
step (those of `eval.every_steps` during training, the end of the run, `python -m mmjax eval`
of any checkpoint), one entry per step: evaluating a step again replaces its entry.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

import jax
from etils import epath

from mmjax.files import write_text_atomic
from mmjax.methods.protocol import EvalResult

REPORT_JSON = "eval.json"
REPORT_MD = "eval.md"
SHARE_WORDS = ("accuracy", "usage")


def is_share(metric: str) -> bool:
    """Whether `metric` is a fraction shown as a percentage."""
    return any(word in metric for word in SHARE_WORDS)


def format_value(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" if is_share(metric) else f"{value:.4g}"


def results_table(results: Sequence[EvalResult]) -> str:
    """Markdown: `| protocol | split | features / model | metric | value |`, baselines marked."""
    lines = ["| protocol | split | model | metric | value |", "| --- | --- | --- | --- | --- |"]
    for r in results:
        name = f"{r.name} (baseline)" if r.baseline else r.name
        lines.append(f"| {r.protocol} | {r.split} | {name} | {r.metric} | {format_value(r.metric, r.value)} |")
    return "\n".join(lines)


def announce(text: str) -> None:
    """A progress line from process 0 (evaluations say what they do before long work)."""
    if jax.process_index() == 0:
        print(text, flush=True)


def write_report(
    workdir: str,
    *,
    step: int,
    method: str,
    data: str,
    results: Sequence[EvalResult],
    files: dict[str, str] | None = None,
) -> str:
    """Write `eval.json` (this evaluation, added to the run's `history`) and `eval.md` into `workdir`.

    Each file is written whole or not at all; returns the JSON path. An `eval.json` that is not a
    report (`load_report` refuses it) is an error, not overwritten.
    """
    files = {k: os.path.basename(v) for k, v in (files or {}).items()}
    rows = [dataclasses.asdict(r) for r in results]
    earlier = load_report(workdir) or {"history": []}
    if "history" not in earlier:  # written before eval.json kept a history: its one evaluation
        earlier["history"] = [{"step": earlier["step"], "results": [dataclasses.asdict(r) for r in earlier["results"]]}]
    history = [e for e in earlier["history"] if e["step"] != int(step)]
    history = sorted([*history, {"step": int(step), "results": rows}], key=lambda e: e["step"])
    report = {
        "step": int(step),
        "method": method,
        "data": data,
        "results": rows,
        "files": files,
        "history": history,
    }
    root = epath.Path(workdir)
    title = f"# {method} on {data}, step {step}\n\n"
    write_text_atomic(root / REPORT_MD, title + results_table(results) + "\n")
    return write_text_atomic(root / REPORT_JSON, json.dumps(report, indent=1) + "\n")


def load_report(workdir: str) -> dict[str, Any] | None:
    """`workdir/eval.json` as a dict with `EvalResult` rows, or None when there is none.

    Raises:
      ValueError: the file is not an evaluation report (unparsable, or rows with unknown or missing
        fields), in one line naming it.
    """
    path = epath.Path(workdir) / REPORT_JSON
    if not path.exists():
        return None
    try:
        report = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}); rerun `python -m mmjax eval --workdir {workdir}`"
        ) from None
    fields = {f.name for f in dataclasses.fields(EvalResult)}
    required = {f.name for f in dataclasses.fields(EvalResult) if f.default is dataclasses.MISSING}
    rows = report.get("results") if isinstance(report, dict) else None
    if not isinstance(rows, list) or not {"method", "step"} <= set(report):
        raise ValueError(f"{path} is not an mmjax evaluation report (expected keys method, step, results)")
    for i, row in enumerate(rows):
        keys = set(row) if isinstance(row, dict) else set()
        if not isinstance(row, dict) or keys - fields or required - keys:
            raise ValueError(
                f"{path}: results[{i}] has keys {sorted(keys)}; expected {sorted(required)} "
                f"and optionally {sorted(fields - required)}"
            )
    history = report.get("history", [])
    if not isinstance(history, list) or not all(
        isinstance(e, dict) and isinstance(e.get("step"), int) and isinstance(e.get("results"), list) for e in history
    ):
        raise ValueError(f"{path}: history is not a list of {{step, results}} entries")
    report["results"] = [EvalResult(**r) for r in rows]
    return report


def set_aside_damaged(workdir: str) -> str | None:
    """Rename a `workdir/eval.json` that `load_report` refuses to `eval.json.damaged` (returned); None if fine."""
    try:
        load_report(workdir)
    except ValueError:
        path = epath.Path(workdir) / REPORT_JSON
        target = path.with_name(REPORT_JSON + ".damaged")
        path.rename(target)
        return str(target)
    return None


def summarize(workdirs: Iterable[str]) -> str:
    """One markdown table over runs: a row per (run, protocol, split, metric), the trained values and baselines.

    Raises:
      FileNotFoundError: a workdir has no `eval.json` (its evaluation never ran or ended).
    """
    lines = [
        "| run | method | step | protocol | split | metric | value | baselines |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for workdir in workdirs:
        report = load_report(workdir)
        if report is None:
            raise FileNotFoundError(
                f"{workdir} has no {REPORT_JSON}: run `python -m mmjax eval --workdir {workdir}` first"
            )
        groups: dict[tuple[str, str, str], list[EvalResult]] = {}
        for r in report["results"]:
            groups.setdefault((r.protocol, r.split, r.metric), []).append(r)
        for (protocol, split, metric), rows in groups.items():
            trained = ", ".join(
                format_value(metric, r.value)
                if len(rows) - sum(x.baseline for x in rows) == 1
                else f"{r.name} {format_value(metric, r.value)}"
                for r in rows
                if not r.baseline
            )
            baselines = ", ".join(f"{r.name} {format_value(metric, r.value)}" for r in rows if r.baseline)
            lines.append(
                f"| {workdir} | {report['method']} | {report['step']} | {protocol} | {split} | {metric} | "
                f"{trained or '-'} | {baselines or '-'} |"
            )
    return "\n".join(lines)


__all__ = [
    "REPORT_JSON",
    "REPORT_MD",
    "announce",
    "format_value",
    "load_report",
    "results_table",
    "set_aside_damaged",
    "summarize",
    "write_report",
]
