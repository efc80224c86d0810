"""README "Methods": its Python blocks run as written."""

import re

import numpy as np
import pytest

from tests.helpers import ROOT

SECTION = "## Methods"

pytestmark = pytest.mark.promise


def section_text() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION + "\n")
    return text[start : text.index("\n## ", start + len(SECTION))]


def test_methods_section_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", section_text(), re.S)
    assert len(blocks) == 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    observed = ~np.isnan(namespace["X"])
    np.testing.assert_array_equal(namespace["filled"][observed], namespace["X"][observed])
