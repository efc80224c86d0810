"""docs/interop.md ("Bring weights in, take them out"): its commands and Python blocks run as written
(illustrations excepted)."""

import os
import re
import subprocess

import pytest

from tests.helpers import ROOT

pytest.importorskip("transformers")
pytest.importorskip("sklearn")

DOC = ROOT / "docs" / "interop.md"

pytestmark = pytest.mark.promise


def section_text() -> str:
    return DOC.read_text()


def test_interop_doc_runs(tmp_path, monkeypatch):
    text = section_text()
    (tmp_path / "experiments").symlink_to(ROOT / "experiments")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env, check=True, timeout=600)
    assert sorted(os.listdir(tmp_path / "exports")) == ["encoder", "features", "hf"]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if not b.startswith("# illustration")]
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    assert namespace["features"].shape == (5, 32)
    assert namespace["tokens"].shape == (2, 49, 32)
