"""What the command line says about itself: help per command, the list of experiment files, the version.

Nothing here imports jax (an experiment file does, when `list` runs it), so `--help` answers at
once. The flags themselves are declared once, in `mmjax.__main__`; the help reads their text from absl.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import pathlib

from absl import flags

from mmjax.config import experiment_description, experiment_variants


@dataclasses.dataclass(frozen=True)
class Command:
    """A command: its usage line, what it does, and the flags it reads (`--verbose` is everyone's)."""

    usage: str
    summary: str
    flags: tuple[str, ...]


COMMANDS = {
    "train": Command(
        "python -m mmjax train --config experiments/FILE.py[:variant] --workdir DIR [--config.a.b=v ...]",
        "Train (or resume) a run from an experiment file, then evaluate it (eval.json, eval.md in DIR). "
        "Rerun on a finished DIR it shows the saved results.",
        ("config", "workdir", "reevaluate", "restart"),
    ),
    "finetune": Command(
        "python -m mmjax finetune --from PRETRAINED --config experiments/finetune_mnist.py --workdir DIR",
        "Fine-tune the encoder of the run in PRETRAINED with a classification head (train with "
        "finetune.from_workdir set to PRETRAINED).",
        ("from", "config", "workdir", "reevaluate", "restart"),
    ),
    "eval": Command(
        "python -m mmjax eval --workdir DIR [--step N]",
        "Evaluate a checkpoint again, with the config stored beside it.",
        ("workdir", "step"),
    ),
    "export": Command(
        "python -m mmjax export --workdir DIR --format hf|hf-vit|safetensors|stablehlo --out OUT",
        "Write a checkpoint's encoder for transformers, as safetensors, or as a StableHLO feature extractor.",
        ("workdir", "format", "out", "step", "force", "pool"),
    ),
    "sample": Command(
        "python -m mmjax sample --workdir DIR [--num N] [--class C] [--out PNG]",
        "Decode images from a MaskGIT, GIVT or MAR workdir into a labelled PNG grid.",
        ("workdir", "num", "class", "steps", "guidance", "seed", "out", "step"),
    ),
    "summarize": Command(
        "python -m mmjax summarize DIR [DIR ...]",
        "Print one table over the eval.json of several runs.",
        (),
    ),
    "config": Command(
        "python -m mmjax config --config experiments/FILE.py[:variant] [--config.a.b=v ...]",
        "Check a config as train does, then print it with what the command line and the file change; trains nothing.",
        ("config",),
    ),
    "list": Command(
        "python -m mmjax list",
        "List the experiment files, each with its description and its variants (FILE.py:key=value,...).",
        (),
    ),
}


def _flag_line(name: str) -> str:
    flag = flags.FLAGS[name]
    default = "" if flag.default in (None, False) else f" (default: {flag.default})"
    return f"  --{name:<12} {flag.help}{default}"


def help_text(command: str | None = None) -> str:
    """`python -m mmjax --help` (command None) or `python -m mmjax COMMAND --help`."""
    if command is None:
        lines = ["usage: python -m mmjax COMMAND [flags]", "", "commands:"]
        lines += [f"  {name:<10} {c.summary}" for name, c in COMMANDS.items()]
        lines += [
            "",
            "python -m mmjax COMMAND --help shows the flags of one command.",
            "  --version    print the version of mmjax",
            "  --verbose    show tracebacks and library warnings",
        ]
        return "\n".join(lines)
    c = COMMANDS[command]
    lines = [f"usage: {c.usage}", "", c.summary, "", "flags:"]
    lines += [_flag_line(name) for name in (*c.flags, "verbose")]
    if command in ("train", "config"):
        lines += ["  --config.a.b=v  set any field of the experiment's config (python -m mmjax config shows them)"]
    return "\n".join(lines)


def unknown_command(word: str) -> str:
    """The error for a command that does not exist, with the closest one."""
    close = difflib.get_close_matches(word, COMMANDS, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown command {word!r}{hint}; commands: {', '.join(COMMANDS)} (python -m mmjax --help)"


def experiments_folder() -> pathlib.Path:
    """`./experiments` when it exists, else the one beside the installed package (a source checkout)."""
    here = pathlib.Path("experiments")
    return here if here.is_dir() else pathlib.Path(__file__).resolve().parents[1] / "experiments"


def experiment_files(folder: pathlib.Path | None = None) -> list[pathlib.Path]:
    """Every experiment file of `folder` (default `experiments_folder()`), by name."""
    folder = experiments_folder() if folder is None else folder
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))


def missing_experiment(path: str) -> str:
    """The error for an experiment file that does not exist, with the closest existing one."""
    names = [os.fspath(p) for p in experiment_files(pathlib.Path(os.path.dirname(path) or "experiments"))]
    close = difflib.get_close_matches(path, names, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else " (python -m mmjax list shows them)"
    return f"--config {path}: no such experiment file{hint}"


def list_experiments() -> str:
    """`python -m mmjax list`: each experiment file, its description and its variants with their defaults."""
    lines = []
    for path in experiment_files():
        lines.append(f"{os.fspath(path)}  {experiment_description(path)}")
        variants = experiment_variants(path)
        if variants:
            lines.append("    variants: " + ", ".join(f"{k}={v}" for k, v in variants.items()))
    return "\n".join(lines)


__all__ = [
    "COMMANDS",
    "experiment_files",
    "experiments_folder",
    "help_text",
    "list_experiments",
    "missing_experiment",
    "unknown_command",
]
