"""Command line: `python -m mmjax train|eval|export|sample|summarize|config|list ...`.

`python -m mmjax --help` lists the commands, `python -m mmjax COMMAND --help` shows one command's
flags (`mmjax.cli`), `--version` the version.

  python -m mmjax train --config experiments/mae_mnist.py[:variant] --workdir DIR [--config.a.b=v ...] [--reevaluate]
                        [--restart]
  python -m mmjax finetune --from PRETRAINED --config experiments/finetune_mnist.py --workdir DIR
  python -m mmjax eval --workdir DIR [--step N]
  python -m mmjax export --workdir DIR --format hf|hf-vit|safetensors|stablehlo --out OUT [--step N] [--force]
  python -m mmjax sample --workdir DIR [--num N] [--class C] [--steps T] [--guidance S] [--out PNG]
  python -m mmjax summarize DIR [DIR ...]
  python -m mmjax config --config experiments/mae_mnist.py[:variant] [--config.a.b=v ...]
  python -m mmjax list

`train` resumes when DIR already has checkpoints and ends with the configured evaluation
(`eval.json` / `eval.md` in DIR); rerun on a finished DIR it shows the saved results
(`--reevaluate` runs the evaluation again); a DIR that holds only unfinished saves (killed while
writing its first checkpoint) is refused unless `--restart` starts it over. `eval` restores a checkpoint with the config
stored beside it and reruns the evaluation. `export` writes a checkpoint for transformers, as
safetensors, or as StableHLO (`mmjax.export.export_workdir`); it refuses to replace an existing
OUT without `--force`. `sample` decodes images from a MaskGIT, GIVT or MAR workdir into a PNG grid.
`summarize` prints one table over the `eval.json` of several runs. `config` checks a config the
way `train` does before it compiles, then prints it with what the command line changed and
what the experiment file sets away from the library's defaults; it trains nothing.

Errors a user can fix are one line on stderr (`error: ...`), exit status 2 before a run
starts and 1 after; `--verbose` shows the traceback. SIGTERM, at any moment, ends a run
with status 42 and its last checkpoint intact; rerun the same command to resume. Ctrl-C
(SIGINT) does the same with status 130, and a second Ctrl-C exits at once.
"""

from __future__ import annotations

import signal
import sys

# A SIGTERM or Ctrl-C that arrives while Python is still importing is remembered here, not fatal:
# the run's watcher takes it over (`mmjax.train.preemption`) and exits 42 (130) after start-up.
# A second Ctrl-C leaves at once.
_EARLY_SIGNALS: list[int] = []


def _early_signal(signum: int, frame: object) -> None:
    if signum == signal.SIGINT and signal.SIGINT in _EARLY_SIGNALS:
        sys.exit(130)
    _EARLY_SIGNALS.append(signum)


signal.signal(signal.SIGTERM, _early_signal)
signal.signal(signal.SIGINT, _early_signal)

import os  # noqa: E402
import re  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from mmjax import cli  # noqa: E402

COMMANDS = tuple(cli.COMMANDS)
_CONFIG = config_flags.DEFINE_config_file("config", None, "experiment file[:variant]", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "directory for checkpoints, metrics and figures")
_STEP = flags.DEFINE_integer("step", None, "checkpoint step for eval/export (default: latest)")
_FORMAT = flags.DEFINE_enum("format", None, ["hf", "hf-vit", "safetensors", "stablehlo"], "export format")
_OUT = flags.DEFINE_string("out", None, "export output directory (must not exist unless --force); sample: PNG path")
_FORCE = flags.DEFINE_bool("force", False, "export: replace an existing --out")
_POOL = flags.DEFINE_enum(
    "pool",
    None,
    ["cls", "mean", "tokens"],
    "export stablehlo: feature pooling (default: cls for a ViT encoder, else the method's own)",
)
_NUM = flags.DEFINE_integer("num", 8, "sample: images per class")
_CLASS = flags.DEFINE_integer("class", None, "sample: the class to generate (default: every class, a row each)")
_STEPS = flags.DEFINE_integer("steps", None, "sample: decoding steps (default: the config's sample.steps)")
_GUIDANCE = flags.DEFINE_float("guidance", None, "sample: guidance scale (default: the config's sample.guidance)")
_SEED = flags.DEFINE_integer("seed", 0, "sample: PRNG seed")
_REEVALUATE = flags.DEFINE_bool(
    "reevaluate", False, "train: evaluate a finished run again instead of showing its saved results"
)
_RESTART = flags.DEFINE_bool(
    "restart", False, "train: start from step 0 when the workdir holds only unfinished saves (a kill while saving)"
)
_FROM = flags.DEFINE_string("from", None, "finetune: the pretrained run's workdir (sets finetune.from_workdir)")
_VERBOSE = flags.DEFINE_bool("verbose", False, "show tracebacks and library warnings")


def fail(err: BaseException, verbose: bool) -> None:
    """Print `err` as one line (plus the traceback with --verbose) and exit 2 (not started) or 1."""
    from mmjax.errors import exit_status, one_line, user_message

    if verbose:
        traceback.print_exception(err)
    message = user_message(err)
    if message is None:
        message = f"internal error {type(err).__name__}: {one_line(str(err))}"
        if not verbose:
            message += " (rerun with --verbose for the traceback, and please report it)"
    step = getattr(err, "mmjax_failed_at_step", None)
    print(f"error{'' if step is None else f' at step {step}'}: {message}", file=sys.stderr, flush=True)
    sys.exit(exit_status(err))


def _config_spec(argv: list[str]) -> str | None:
    """The `--config` value, `experiments/x.py[:variant]`, or None."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def _missing_field(argv: list[str]) -> str | None:
    """`--config.a.b: unknown field a.b (did you mean a.c?) ...` for the first override the config lacks."""
    from mmjax.config import load_experiment, unknown_field_error

    spec = _config_spec(argv)
    if spec is None:
        return None
    path, _, arg = spec.partition(":")
    try:
        config = load_experiment(path, arg or None)
    except Exception:
        return None
    for flag in (a.split("=")[0] for a in argv if a.startswith("--config.")):
        node, where = config, ""
        for key in flag.removeprefix("--config.").split("."):
            if not hasattr(node, "keys") or key not in node:
                known = sorted(node.keys()) if hasattr(node, "keys") else []
                return f"{flag}: {unknown_field_error(where, [key], known)}"
            node, where = node[key], f"{where}.{key}".removeprefix(".")
    return None


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with one-line errors: a missing experiment file, a misspelt override, a bad value."""
    path = (_config_spec(argv) or "").partition(":")[0] or None
    if path is not None and not os.path.isfile(path):
        print(f"error: {cli.missing_experiment(path)}", file=sys.stderr)
        sys.exit(2)
    try:
        return flags.FLAGS(argv)
    except Exception as err:  # absl, config_flags and the experiment file all raise here
        from mmjax.errors import one_line

        if "--verbose" in argv:
            traceback.print_exception(err)
        text = str(err)
        if "Traceback (most recent call last)" in text:  # config_flags embeds the experiment file's traceback
            last = [line for line in text.splitlines() if line.strip()][-1]
            text = re.sub(r"^[\w.]+(Error|Exception): ", "", last.strip())
        message = _missing_field(argv) or one_line(_plain_flag_error(text))
        print(f"error: {message}", file=sys.stderr, flush=True)
        sys.exit(2)


def _plain_flag_error(text: str) -> str:
    """absl's value errors in words: `flag --a.b=x: expected true or false, got 'x'` (not a Python tuple)."""
    found = re.fullmatch(r"flag (--[\w.]+)=(.*?): \('Non-boolean argument to boolean flag', '(.*)'\)", text.strip())
    if found:
        return f"{found.group(1)}={found.group(2)}: expected true or false, got {found.group(3)!r}"
    found = re.fullmatch(
        r"flag (--[\w.]+)=(.*?): (invalid literal for int\(\)|could not convert string to float).*", text.strip()
    )
    if found:
        kind = "an integer" if "int" in found.group(3) else "a number"
        return f"{found.group(1)}={found.group(2)}: expected {kind}"
    return text


def _quiet(verbose: bool) -> None:
    """Library chatter off the console unless --verbose (orbax's shutdown noise included)."""
    logging.set_verbosity(logging.WARNING if verbose else logging.ERROR)
    if not verbose:
        warnings.filterwarnings("ignore")
        import logging as std_logging

        for name in ("absl", "orbax", "jax", "asyncio", "grain"):
            std_logging.getLogger(name).setLevel(std_logging.CRITICAL)


def main(argv: list[str]) -> None:
    verbose = _VERBOSE.value
    _quiet(verbose)
    if len(argv) < 2:
        print(cli.help_text(), file=sys.stderr)
        sys.exit(2)
    if argv[1] not in COMMANDS:
        print(f"error: {cli.unknown_command(argv[1])}", file=sys.stderr)
        sys.exit(2)
    command = argv[1]
    if command != "summarize" and len(argv) != 2:
        print(
            f"error: {command} takes no arguments besides flags, got {argv[2:]}; {cli.COMMANDS[command].usage}",
            file=sys.stderr,
        )
        sys.exit(2)
    if command == "list":
        print(cli.list_experiments())
        return
    from mmjax.train.preemption import Preempted, PreemptionWatcher

    watcher = PreemptionWatcher(signals=(signal.SIGTERM, signal.SIGINT))
    try:
        with watcher:
            for signum in _EARLY_SIGNALS:
                watcher.receive(signum)
            run_command(command, argv[2:], watcher)
    except Preempted as stop:
        print(stop, flush=True)
        raise
    except SystemExit:
        raise
    except Exception as err:
        fail(err, verbose)


def run_command(command: str, args: list[str], watcher) -> None:
    if command == "summarize":
        if not args:
            raise ValueError("summarize needs one or more workdirs: python -m mmjax summarize DIR [DIR ...]")
        from mmjax.evaluate.report import summarize

        print(summarize(args))
        return
    if command == "config":
        show_config()
        return
    if not _WORKDIR.value:
        raise ValueError(f"{command} needs --workdir DIR")
    workdir = _WORKDIR.value
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise NotADirectoryError(f"--workdir {workdir} is a file; expected a directory (new, or a run's)")
    if command == "train":
        train_and_evaluate(workdir, watcher)
    elif command == "finetune":
        config = _CONFIG.value
        if config is None or config.get("method") != "finetune" or not _FROM.value:
            raise ValueError(
                "finetune needs --from PRETRAINED and --config with a finetune experiment "
                "(experiments/finetune_mnist.py); python -m mmjax finetune --help"
            )
        config.finetune.from_workdir = _FROM.value
        if "tokenizer" in config.data and not config.data.tokenizer:  # text: the pretrained run's tokenizer
            config.data.tokenizer = _FROM.value
        train_and_evaluate(workdir, watcher)
    elif command == "eval":
        from mmjax.evaluate import evaluate_pretraining
        from mmjax.train import restore_state

        config, method, state = restore_state(workdir, _STEP.value)
        step = int(state.step)
        with watcher.immediate(step):
            evaluate_pretraining(config, method, state.params, workdir, step=step)
    elif command == "export":
        from mmjax.export import export_workdir

        if not _FORMAT.value or not _OUT.value:
            raise ValueError("export needs --format hf|hf-vit|safetensors|stablehlo and --out OUT")
        out = export_workdir(workdir, _FORMAT.value, _OUT.value, _STEP.value, _FORCE.value, _POOL.value)
        print(f"exported {_FORMAT.value} to {out}")
    else:
        from mmjax.evaluate.sampling import sample_images
        from mmjax.train import load_trained

        config, method, params = load_trained(workdir, _STEP.value)
        path = sample_images(
            config,
            method,
            params,
            _NUM.value,
            _CLASS.value,
            steps=_STEPS.value,
            guidance=_GUIDANCE.value,
            seed=_SEED.value,
            out=_OUT.value or workdir,
        )
        print(f"samples: {path}")


def train_and_evaluate(workdir: str, watcher) -> None:
    """Train (or resume), then evaluate; a finished run shows its saved results instead."""
    from mmjax.evaluate import evaluate_pretraining
    from mmjax.evaluate.report import REPORT_MD, load_report
    from mmjax.train import train

    config = _CONFIG.value
    if config is None:
        raise ValueError("train needs --config experiments/<file>.py[:variant]")
    result = train(config, workdir, watcher=watcher, restart=_RESTART.value)
    saved = load_report(workdir) if result.already_complete and not _REEVALUATE.value else None
    if saved is not None and saved["step"] == result.step:
        with open(os.path.join(workdir, REPORT_MD)) as f:
            print(f"\nsaved results of step {result.step} ({os.path.join(workdir, REPORT_MD)}; --reevaluate to redo):")
            print(f.read().split("\n\n", 1)[-1].rstrip())
        return
    with watcher.immediate(result.step):
        try:
            evaluate_pretraining(config, result.method, result.state.params, workdir, step=result.step)
        except Exception as err:
            err.mmjax_failed_at_step = result.step  # the run trained; its evaluation failed
            raise


def show_config() -> None:
    """`python -m mmjax config`: the config checked as `train` checks it, and how it departs from its sources."""
    from mmjax.config import load_experiment
    from mmjax.train.validate import check_config, config_differences, config_fields, library_defaults

    config = _CONFIG.value
    if config is None:
        raise ValueError("config needs --config experiments/<file>.py[:variant]")
    check_config(config)
    path, _, arg = (_config_spec(sys.argv) or "").partition(":")
    for key, value in config_fields(config).items():
        print(f"{key} = {value!r}")
    from_file = load_experiment(path, arg or None)
    for title, base, changed in (
        ("set on the command line", from_file, config),
        (
            f"set by {path} (against the library defaults of {config.method})",
            library_defaults(config.method),
            from_file,
        ),
    ):
        changes = config_differences(base, changed)
        print(f"\n# {title}: {len(changes) or 'nothing'}")
        for line in changes:
            print(f"#   {line}")
    print(f"\n# valid: the checks of `train` pass for {config.method}")


def run() -> None:
    args = sys.argv[1:]
    if "--version" in args:
        from mmjax import __version__

        print(f"mmjax {__version__}")
        sys.exit(0)
    if any(a in ("--help", "-h", "--help=true") for a in args):
        command = next((a for a in args if not a.startswith("-")), None)
        if command is not None and command not in COMMANDS:
            print(f"error: {cli.unknown_command(command)}", file=sys.stderr)
            sys.exit(2)
        print(cli.help_text(command))
        sys.exit(0)
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
