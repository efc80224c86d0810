"""Command line: `python -m mmjax train|eval ...`.

  python -m mmjax train --config experiments/mae_mnist.py[:variant] --workdir DIR [--config.a.b=value ...]
  python -m mmjax eval --workdir DIR [--step N]

`train` resumes when DIR already has checkpoints; at the end it runs the configured
evaluation. `eval` reloads `DIR/config.json` and a checkpoint and reruns the evaluation.
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

COMMANDS = ("train", "eval")
_CONFIG = config_flags.DEFINE_config_file("config", None, "experiment file[:variant]", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "directory for checkpoints, metrics and figures")
_STEP = flags.DEFINE_integer("step", None, "checkpoint step for eval (default: latest)")


def main(argv: list[str]) -> None:
    logging.set_verbosity(logging.WARNING)
    from mmjax.evaluate import evaluate_pretraining
    from mmjax.train import load_trained, train

    if len(argv) != 2 or argv[1] not in COMMANDS:
        sys.exit(f"usage: python -m mmjax {{{'|'.join(COMMANDS)}}} --workdir DIR [--config FILE]; got {argv[1:]}")
    if not _WORKDIR.value:
        sys.exit("--workdir is required")
    if argv[1] == "train":
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
