"""docs/architecture.md: its Python blocks run as written (in a fresh interpreter: they register parts)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.promise

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "architecture.md")


def python_blocks() -> list[str]:
    with open(DOC) as f:
        return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


def test_the_architecture_page_has_its_worked_examples():
    assert len(python_blocks()) >= 3  # config, mask, method


def test_every_python_block_of_the_architecture_page_runs():
    script = "\n\n".join(f"# --- block {i}\n{block}" for i, block in enumerate(python_blocks()))
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
