"""The README's functional-API example runs as written."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"

pytestmark = pytest.mark.promise


def test_readme_api_example_runs():
    text = README.read_text()
    section = text[text.index("## Using the functional API") :]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["loss"].shape == () and namespace["feats"].shape == (4, 64)
    assert namespace["recon"]["prediction"].shape == (4, 32, 32, 3)
