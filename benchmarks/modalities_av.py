"""Video and audio probes: pretrain each bundled variant for a fixed number of steps, then
probe the encoder against a randomly initialized one (and the raw input) on a held-out split.

    python benchmarks/modalities_av.py           # the bundled experiments' default steps
    python benchmarks/modalities_av.py --quick   # a short smoke run (numbers not meaningful)

`rows(quick)` returns one dict per probe: modality, task, metric, pretrained, random,
baseline (a linear probe on the flattened raw input), steps, wall_s (train + probe).
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import tempfile
import time

import ml_collections

from mmjax.train import train

ROOT = pathlib.Path(__file__).resolve().parents[1]

# (modality, experiment, task, method name)
PROBES = [
    ("video", "videomae_moving_digits", "moving digits: digit class (10)", "videomae"),
    ("audio", "audiomae_synth", "synth sounds: class (6)", "audiomae"),
]


def load_experiment(name: str, arg: str | None = None) -> ml_collections.ConfigDict:
    """`get_config(arg)` of `experiments/<name>.py`."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def probe_row(modality: str, experiment: str, task: str, method: str, quick: bool) -> dict:
    config = load_experiment(experiment, "steps=20" if quick else None)
    config.train.update(tensorboard=False, async_checkpoints=False, checkpoint_every=10**9)
    if quick:
        config.data.update(num_train=200, num_test=100)
        config.eval.probe_steps = 50
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        result = train(config, workdir)
        probe = result.method.evaluate(config, result.state.params, workdir)["probe"]
    return {
        "modality": modality,
        "task": task,
        "metric": "linear probe accuracy",
        "pretrained": probe[f"{method} encoder"],
        "random": probe["random encoder"],
        "baseline": probe["raw input"],
        "steps": config.train.steps,
        "wall_s": time.perf_counter() - start,
    }


def rows(quick: bool = False) -> list[dict]:
    return [probe_row(*spec, quick=quick) for spec in PROBES]


def markdown(table: list[dict]) -> str:
    lines = [
        "| modality | task | metric | pretrained | random encoder | raw input | steps | wall s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in table:
        lines.append(
            f"| {r['modality']} | {r['task']} | {r['metric']} | {100 * r['pretrained']:.1f}% | "
            f"{100 * r['random']:.1f}% | {100 * r['baseline']:.1f}% | {r['steps']} | {r['wall_s']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    print(markdown(rows(args.quick)))


if __name__ == "__main__":
    main()
