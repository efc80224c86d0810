"""Whole-file writes that readers never see half done, on a local disk or a bucket (`gs://...`)."""

from __future__ import annotations

import os

from etils import epath


def write_text_atomic(path: str | os.PathLike, text: str) -> str:
    """Write `text` to `path`: locally into `<path>.tmp`, then renamed over `path` (object stores
    write whole objects, so there it is a plain write). Creates the parent folder. Returns the path."""
    target = epath.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.as_posix().startswith("/"):
        tmp = target.parent / f"{target.name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, target)
    else:
        target.write_text(text)
    return os.fspath(target)


__all__ = ["write_text_atomic"]
