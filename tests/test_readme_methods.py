"""docs/methods.md (the README's methods page): its Python blocks run as written."""

import re

import numpy as np
import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.promise


def section_text() -> str:
    return (ROOT / "docs" / "methods.md").read_text()


def test_methods_page_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", section_text(), re.S)
    assert len(blocks) == 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/methods.md", "exec"), namespace)
    observed = ~np.isnan(namespace["X"])
    np.testing.assert_array_equal(namespace["filled"][observed], namespace["X"][observed])
