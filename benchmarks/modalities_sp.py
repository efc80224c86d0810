"""Series and point-cloud masked modeling: train each bundled experiment, then probe and compare with baselines.

Each row compares the pretrained encoder with the same architecture at its random
initialization (and, for imputation and forecasting, with a simple baseline). Required:
pretrained beats random on every probe, and series imputation beats linear interpolation.

    python benchmarks/modalities_sp.py            # the experiments' default step counts
    python benchmarks/modalities_sp.py --quick    # a short smoke run (numbers not meaningful)
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time
from typing import Any

from mmjax.config import load_experiment
from mmjax.evaluate import evaluate_pretraining
from mmjax.train import train

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _experiment(name: str, arg: str | None) -> Any:
    config = load_experiment(ROOT / "experiments" / f"{name}.py", arg)
    config.train.update(tensorboard=False, async_checkpoints=False)
    return config


def _train_and_evaluate(
    name: str, steps: int | None, variant: str | None = None
) -> tuple[Any, dict[tuple[str, str], float], int, float]:
    """Train the experiment `name` (`variant`: more of its arg, e.g. `data=uni`); its config,
    `{(protocol, name): value}` of its evaluation, steps, wall s."""
    arg = ",".join(a for a in (variant, None if steps is None else f"steps={steps}") if a)
    config = _experiment(name, arg or None)
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        result = train(config, workdir)
        wall = time.perf_counter() - start
        results = evaluate_pretraining(config, result.method, result.state.params, workdir, step=result.step)
    return config, {(r.protocol, r.name): r.value for r in results}, config.train.steps, wall


def series_rows(
    steps: int | None = None, experiment: str = "patchtst_series", variant: str | None = None
) -> list[dict[str, Any]]:
    config, value, steps, wall = _train_and_evaluate(experiment, steps, variant)
    common = {"modality": "series", "steps": steps, "wall_s": round(wall, 1)}
    trained = f"{config.method} encoder"
    rows = []
    for task, baseline in (("imputation", "linear interpolation"), ("forecast", "seasonal naive")):
        rows.append(
            {
                **common,
                "task": f"{task} (held-out windows)",
                "metric": "RMSE / window std (lower is better)",
                "pretrained": value[task, trained],
                "random": value[task, "random encoder"],
                "baseline": f"{baseline} {value[task, baseline]:.3f}; last value {value[task, 'last value']:.3f}",
                "baseline_value": value[task, baseline],
            }
        )
    for name in config.data.probe_sets:
        protocol = f"linear probe ({name})"
        rows.append(
            {
                **common,
                "task": f"probe {name} (UCR, linear)",
                "metric": "accuracy",
                "pretrained": value[protocol, trained],
                "random": value[protocol, "random encoder"],
            }
        )
    return rows


def points_rows(steps: int | None = None) -> list[dict[str, Any]]:
    config, value, steps, wall = _train_and_evaluate("pointmae_shapes", steps)
    return [
        {
            "modality": "points",
            "task": "probe shape class (8 trimesh primitives, linear)",
            "metric": "accuracy",
            "pretrained": value["linear probe", f"{config.method} encoder"],
            "random": value["linear probe", "random encoder"],
            "steps": steps,
            "wall_s": round(wall, 1),
        }
    ]


def rows(quick: bool = False) -> list[dict[str, Any]]:
    """Train and evaluate both bundled experiments; `quick` shortens training to a smoke run.

    Keys: modality, task, metric, pretrained, random, steps, wall_s (training only), and for
    imputation / forecasting `baseline` (text) and `baseline_value` (the first baseline named).
    """
    return series_rows(100 if quick else None) + points_rows(50 if quick else None)


def markdown(table: list[dict[str, Any]]) -> str:
    keys = ["modality", "task", "metric", "pretrained", "random", "baseline", "steps", "wall_s"]
    lines = ["| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
    for row in table:
        cells = [
            f"{row[k]:.3f}" if isinstance(row.get(k), float) and k in ("pretrained", "random") else str(row.get(k, ""))
            for k in keys
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    print(markdown(rows(parser.parse_args().quick)))
