"""Video and audio probes: pretrain each bundled variant for a fixed number of steps, then
probe the encoder against a randomly initialized one (and the raw input) on a held-out split.

    python benchmarks/modalities_av.py           # the bundled experiments' default steps
    python benchmarks/modalities_av.py --quick   # a short smoke run (numbers not meaningful)

`rows(quick)` returns one dict per probe: modality, task, metric, pretrained, random (the
mean over 3 random initializations; random_max the best of them), baseline (a linear
probe on the flattened raw input), steps, wall_s (train + probe).
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

import jax
import numpy as np

from mmjax.config import load_experiment
from mmjax.data.kinds import data_kind
from mmjax.evaluate.kind_probe import RAW_INPUT, encoder_probe_table
from mmjax.train import train

ROOT = pathlib.Path(__file__).resolve().parents[1]

RANDOM_SEEDS = (12345, 1, 2)  # random encoders to compare with (the first is the one `evaluate` uses)

# (modality, experiment, task)
PROBES = [
    ("video", "videomae_moving_digits", "moving digits: digit class (10)"),
    ("audio", "audiomae_synth", "synth sounds: class (6)"),
]


def probe_row(modality: str, experiment: str, task: str, quick: bool) -> dict:
    config = load_experiment(ROOT / "experiments" / f"{experiment}.py", "steps=20" if quick else None)
    config.train.update(tensorboard=False, async_checkpoints=False, checkpoint_every=10**9)
    if quick:
        config.data.update(num_train=200, num_test=100)
        config.eval.kind_probe.steps = 50
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        result = train(config, workdir)
    method, ev, probe = result.method, config.eval, config.eval.kind_probe
    example = data_kind(config.data).example_batch(config.data, 1)
    encoders = {"pretrained": result.state.params}
    for seed in RANDOM_SEEDS:
        encoders[f"random {seed}"] = method.init(jax.random.key(config.seed + seed), example)
    probe = encoder_probe_table(
        lambda params, x: method.features(params, x, pool=probe.pool),
        encoders,
        lambda split: method.eval_batches(config.data, split, ev.batch_size),
        config.data,
        method.input_key,
        batch_size=ev.batch_size,
        steps=probe.steps,
        l2=probe.l2,
    )
    randoms = [probe[f"random {seed}"] for seed in RANDOM_SEEDS]
    return {
        "modality": modality,
        "task": task,
        "metric": "linear probe accuracy",
        "pretrained": probe["pretrained"],
        "random": float(np.mean(randoms)),
        "random_max": max(randoms),
        "baseline": probe[RAW_INPUT],
        "steps": config.train.steps,
        "wall_s": time.perf_counter() - start,
    }


def rows(quick: bool = False, only: str | None = None) -> list[dict]:
    return [probe_row(*spec, quick=quick) for spec in PROBES if only in (None, spec[0])]


def markdown(table: list[dict]) -> str:
    lines = [
        "| modality | task | metric | pretrained | random encoder (mean / best of 3) | raw input | steps | wall s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in table:
        random = f"{100 * r['random']:.1f}% / {100 * r['random_max']:.1f}%"
        lines.append(
            f"| {r['modality']} | {r['task']} | {r['metric']} | {100 * r['pretrained']:.1f}% | {random} | "
            f"{100 * r['baseline']:.1f}% | {r['steps']} | {r['wall_s']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--only", choices=[spec[0] for spec in PROBES], help="one modality")
    args = parser.parse_args()
    print(markdown(rows(args.quick, args.only)))


if __name__ == "__main__":
    main()
