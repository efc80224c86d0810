"""How an error reaches the console: one or two lines for anything a user can fix.

The command line prints `error: <what, which field or file, what was expected>` and exits 2
when the run never started, 1 when it failed after starting; `--verbose` adds the
traceback. An error that is not the user's (a bug) says so and asks for `--verbose`.
"""

from __future__ import annotations

import re

# Optional packages -> the extra that installs them (pyproject.toml).
EXTRAS = {
    "safetensors": "export",
    "flatbuffers": "export",
    "sklearn": "data",
    "mlxtend": "data",
    "PIL": "data",
    "tokenizers": "text",
    "matplotlib": "plot",
    "pandas": "tables",
    "scipy": "modalities",
    "statsmodels": "modalities",
    "sktime": "modalities",
    "trimesh": "modalities",
    "tensorboardX": "tensorboard",
    "transformers": "test",
    "torch": "test",
}

# Exceptions a user's config, data, workdir or environment causes (and their subclasses:
# ConfigError, CheckpointMismatchError, NonFiniteLossError, WorkdirBusyError, ...).
USER_ERRORS = (
    ValueError,
    KeyError,
    AttributeError,
    OSError,
    ImportError,
    FloatingPointError,
    RuntimeError,
)
MAX_CHARS = 600


def one_line(text: str) -> str:
    """`text` with its whitespace collapsed, cut at `MAX_CHARS`."""
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 3] + "..."


def missing_package_message(err: ImportError) -> str | None:
    """`needs the optional package 'x': pip install 'mmjax[extra]'` for an optional dependency."""
    name = (getattr(err, "name", None) or "").split(".")[0]
    if not name:
        found = re.search(r"No module named '([^'.]+)", str(err))
        name = found.group(1) if found else ""
    extra = EXTRAS.get(name)
    if extra is None:
        return None
    return f"this needs the optional package {name!r}: pip install 'mmjax[{extra}]'"


def user_message(err: BaseException) -> str | None:
    """One line for an error the user can fix; None for one that is not theirs (a bug)."""
    if isinstance(err, ImportError):
        hint = missing_package_message(err)
        if hint is not None:
            return hint
    if not isinstance(err, USER_ERRORS):
        return None
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    if isinstance(err, OSError) and err.filename and str(err.filename) not in str(text):
        text = f"{text}: {err.filename}"
    return one_line(text) or type(err).__name__


def exit_status(err: BaseException) -> int:
    """1 for a run that failed after it started (a NaN, an error during training or evaluation), else 2."""
    return 1 if getattr(err, "mmjax_failed_at_step", None) is not None or isinstance(err, FloatingPointError) else 2


__all__ = ["EXTRAS", "exit_status", "missing_package_message", "one_line", "user_message"]
