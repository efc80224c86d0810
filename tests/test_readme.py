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


def test_every_docs_page_is_linked_from_the_readme_and_every_relative_link_resolves():
    text = README.read_text()
    pages = sorted(p.name for p in (README.parent / "docs").glob("*.md"))
    assert pages and [p for p in pages if f"](docs/{p}" not in text] == []
    for page in [README, *(README.parent / "docs").glob("*.md")]:
        for target, anchor in re.findall(r"\]\(([^)#:\s]*)(?:#([^)]*))?\)", page.read_text()):
            linked = (page.parent / target) if target else page
            assert linked.exists(), f"{page.name} links {target}, which does not exist"
            if anchor and linked.suffix == ".md":
                assert anchor in heading_anchors(linked), f"{page.name} links {target}#{anchor}: no such heading"


def heading_anchors(page: pathlib.Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # a `#` comment in a code block is no heading
    headings = re.findall(r"^#+ (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}
