"""Command line: `python -m mmjax train|eval|export|sample ...`.

  python -m mmjax train --config experiments/mae_mnist.py[:variant] --workdir DIR [--config.a.b=value ...]
  python -m mmjax eval --workdir DIR [--step N]
  python -m mmjax export --workdir DIR --format hf|hf-vit|safetensors|stablehlo --out OUT [--step N] [--force]
  python -m mmjax sample --workdir DIR [--num N] [--class C] [--steps T] [--guidance S] [--out PNG]

`train` resumes when DIR already has checkpoints; at the end it runs the configured
evaluation. `eval` reloads `DIR/config.json` and a checkpoint and reruns the evaluation.
`export` writes a checkpoint for transformers, as safetensors, or as StableHLO (see
`mmjax.export.export_workdir`); it refuses to replace an existing OUT without `--force`.
`sample` decodes images from a MaskGIT workdir and writes a PNG grid (`mmjax.generate.sample_workdir`).
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

COMMANDS = ("train", "eval", "export", "sample")
_CONFIG = config_flags.DEFINE_config_file("config", None, "experiment file[:variant]", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "directory for checkpoints, metrics and figures")
_STEP = flags.DEFINE_integer("step", None, "checkpoint step for eval/export (default: latest)")
_FORMAT = flags.DEFINE_enum("format", None, ["hf", "hf-vit", "safetensors", "stablehlo"], "export format")
_OUT = flags.DEFINE_string("out", None, "export output directory (must not exist unless --force); sample: PNG path")
_FORCE = flags.DEFINE_bool("force", False, "export: replace an existing --out")
_POOL = flags.DEFINE_enum("pool", "cls", ["cls", "mean", "tokens"], "export stablehlo: feature pooling")
_NUM = flags.DEFINE_integer("num", 8, "sample: images per class")
_CLASS = flags.DEFINE_integer("class", None, "sample: the class to generate (default: every class, a row each)")
_STEPS = flags.DEFINE_integer("steps", None, "sample: decoding steps (default: the config's sample.steps)")
_GUIDANCE = flags.DEFINE_float("guidance", None, "sample: guidance scale (default: the config's sample.guidance)")
_SEED = flags.DEFINE_integer("seed", 0, "sample: PRNG seed")


def main(argv: list[str]) -> None:
    logging.set_verbosity(logging.WARNING)
    from mmjax.evaluate import evaluate_pretraining
    from mmjax.train import load_trained, train

    if len(argv) != 2 or argv[1] not in COMMANDS:
        sys.exit(f"usage: python -m mmjax {{{'|'.join(COMMANDS)}}} --workdir DIR [--config FILE]; got {argv[1:]}")
    if not _WORKDIR.value:
        sys.exit("--workdir is required")
    if argv[1] == "export":
        from mmjax.export import export_workdir

        if not _FORMAT.value or not _OUT.value:
            sys.exit("export needs --format hf|hf-vit|safetensors|stablehlo and --out OUT")
        try:
            out = export_workdir(_WORKDIR.value, _FORMAT.value, _OUT.value, _STEP.value, _FORCE.value, _POOL.value)
        except (FileExistsError, FileNotFoundError) as err:
            sys.exit(f"error: {err}")
        print(f"exported {_FORMAT.value} to {out}")
    elif argv[1] == "sample":
        from mmjax.generate.sample import sample_workdir

        try:
            path = sample_workdir(
                _WORKDIR.value,
                _NUM.value,
                _CLASS.value,
                steps=_STEPS.value,
                guidance=_GUIDANCE.value,
                seed=_SEED.value,
                out=_OUT.value,
                step=_STEP.value,
            )
        except (ValueError, FileNotFoundError) as err:
            sys.exit(f"error: {err}")
        print(f"samples: {path}")
    elif argv[1] == "train":
        if _CONFIG.value is None:
            sys.exit("train needs --config experiments/<file>.py[:variant]")
        result = train(_CONFIG.value, _WORKDIR.value)
        evaluate_pretraining(_CONFIG.value, result.method, result.state.params, _WORKDIR.value)
    else:
        config, method, params = load_trained(_WORKDIR.value, _STEP.value)
        evaluate_pretraining(config, method, params, _WORKDIR.value)


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    run()
