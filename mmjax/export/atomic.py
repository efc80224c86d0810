"""All-or-nothing output directories: write into a temporary sibling, rename at the end."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def atomic_directory(out: str | os.PathLike, force: bool = False) -> Iterator[str]:
    """Yield a fresh temporary directory that becomes `out` only if the block finishes.

    The temporary directory sits beside `out` (same filesystem, so the final step is a
    rename). If the block raises or the process dies, `out` is untouched and the
    temporary directory is removed (or, after a kill, left as `.<name>.tmp-*`, never as `out`).

    Raises:
      FileExistsError: `out` exists and `force` is False.
    """
    out = os.path.abspath(os.fspath(out))
    if os.path.lexists(out) and not force:
        raise FileExistsError(f"export output {out} already exists; pass --force (force=True) to replace it")
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the output is an ordinary directory
    try:
        yield tmp
        if os.path.lexists(out):  # force: move the old output aside first, then drop it
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.old-", dir=parent)
            os.rename(out, os.path.join(old, "x"))
            os.rename(tmp, out)
            shutil.rmtree(old)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
