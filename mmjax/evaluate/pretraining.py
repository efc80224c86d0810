"""Evaluation of a trained method: run it, print one table, save `eval.json` / `eval.md`.

`evaluate_pretraining` is what `python -m mmjax train` calls after training (and every
`eval.every_steps` during it) and what `python -m mmjax eval` calls. It runs the protocols
`eval.protocols` names, in order (`mmjax.evaluate.protocols`; a run starts with its method's
own): for images a linear probe of the encoder against a random encoder and raw pixels, a
tokenizer's reconstruction error and code statistics, and a labelled reconstruction figure;
text, tables, series, points, video, audio and generation have their own.

Parameters sharded across processes are first gathered to every host (a collective), then
every process evaluates on its own devices: the numbers are the same everywhere and only
process 0 prints and writes, so no process waits on another while it evaluates.
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax

from mmjax.evaluate.protocols import applicable_protocols, requested_protocols, run_protocols
from mmjax.evaluate.report import announce, results_table, set_aside_damaged, write_report
from mmjax.methods.protocol import EvalResult


def host_params(params: Any) -> Any:
    """`params` as host numpy arrays on every process (an all-gather when they span processes)."""
    if all(getattr(x, "is_fully_addressable", True) for x in jax.tree.leaves(params)):
        return jax.device_get(params)
    from jax.experimental import multihost_utils  # noqa: PLC0415

    return multihost_utils.process_allgather(params, tiled=True)


def evaluate_pretraining(
    config: Any, method: Any, params: Any, workdir: str, *, step: int | None = None
) -> list[EvalResult]:
    """Run the configured evaluation, print its table, write `eval.json` / `eval.md` (process 0).

    Args:
      config, method, params: a trained run (`params` may be sharded, even across processes).
      workdir: where the results and figures go.
      step: the checkpoint step evaluated (recorded in `eval.json`).

    Returns the rows (`EvalResult`); with nothing evaluated (`eval.protocols=()`, or none applies), no
    file is written. Every process must call it (the parameters are gathered).
    """
    names = applicable_protocols(config, method)  # an unknown name fails before the parameters are gathered
    skipped = [name for name in requested_protocols(config) if name not in names]
    if skipped:
        announce(f"skipped: {', '.join(skipped)} (nothing to measure in a {config.method} run)")
    if not names:
        announce("nothing to evaluate (eval.protocols names none that applies); no eval.json written")
        return []
    if jax.process_index() == 0 and (moved := set_aside_damaged(workdir)) is not None:
        announce(f"{os.path.join(workdir, 'eval.json')} was not a report: moved to {moved}; its history starts again")
    params = host_params(params)
    began = time.perf_counter()
    announce(f"\nevaluating {config.method} (step {step}): {', '.join(names)} ...")
    results, files = run_protocols(config, method, params, workdir)
    source = config.data.get("source", config.data.get("kind", "data"))
    if not results and not files:
        announce(f"nothing to report ({', '.join(names)} gave no rows); no eval.json written")
        return results
    if jax.process_index() == 0:
        if results:
            print(f"\n{config.method} on {source}, step {step}\n{results_table(results)}", flush=True)
        for name, path in files.items():
            print(f"{name}: {path}", flush=True)
        write_report(
            workdir,
            step=-1 if step is None else step,
            method=config.method,
            data=str(source),
            results=results,
            files=files,
        )
        print(f"results: {os.path.join(workdir, 'eval.json')} ({time.perf_counter() - began:.0f}s)", flush=True)
    return results
