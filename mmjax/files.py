"""Whole-file writes that readers never see half done, on a local disk or a bucket (`gs://...`)."""

from __future__ import annotations

import os
import tempfile

from etils import epath


def write_text_atomic(path: str | os.PathLike, text: str) -> str:
    """Write `text` to `path`: locally into a temporary file of its own beside it (a unique name, so
    two writers never share one), then renamed over `path`; object stores write whole objects, so
    there it is a plain write. Creates the parent folder. Returns the path."""
    target = epath.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.as_posix().startswith("/"):
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the file from other users
            os.replace(tmp, target)
        except BaseException as err:
            if os.path.exists(tmp):
                os.remove(tmp)
            if isinstance(err, OSError) and err.filename is None:  # a failed write names no file: name it
                raise OSError(err.errno, err.strerror, os.fspath(target)) from None
            raise
    else:
        target.write_text(text)
    return os.fspath(target)


__all__ = ["write_text_atomic"]
