"""docs/masks.md: every call it shows runs as written, on the inputs it names, and gives the documented shapes."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax import masking
from tests.helpers import ROOT

pytestmark = pytest.mark.promise

DOC = ROOT / "docs" / "masks.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def inputs(key) -> dict:
    """The arrays the snippets name without defining them, at the sizes their own calls imply."""
    ids = jnp.where(jnp.arange(64)[None] < jnp.array([[64], [64], [52], [52]]), 1000 + jnp.arange(64), 0)
    ids = ids.at[:, 0].set(101)
    random_m = masking.random_mask(jax.random.key(2), 4, 196, 0.75)
    return {
        "ids": ids,
        "attn": ids > 0,
        "word_starts": jnp.arange(64)[None].repeat(4, 0) % 3 == 0,
        "token_counts": jnp.ones(30522, jnp.int32).at[1000:1032].set(50),
        "attention": jax.random.uniform(jax.random.key(3), (4, 196)),
        "predicted_loss": jax.random.uniform(jax.random.key(4), (4, 196)),
        "step": jnp.asarray(50),
        "total_steps": 100,
        "prior": jax.random.uniform(jax.random.key(5), (4, 196)),
        "random_m": random_m,
        "block_m": masking.blockwise_mask(jax.random.key(6), 4, grid=(14, 14), num_masked=147),  # as many as random_m
        "images": jnp.zeros((4, 224, 224, 3)),
        "points": jax.random.normal(jax.random.key(7), (4, 1024, 3)),
        "table": jnp.where(jax.random.bernoulli(jax.random.key(8), 0.2, (4, 6)), jnp.nan, 1.0),
    }


def test_every_section_has_a_call_and_every_call_names_an_exported_generator():
    text = DOC.read_text()
    sections = re.findall(r"^### (.+)$", text, re.M)
    assert len(blocks()) == len(sections) + 1  # the imports, then one block per generator
    called = set(re.findall(r"\bM\.(\w+)\(", "".join(blocks())))
    assert called <= set(masking.__all__), called - set(masking.__all__)


def test_every_block_runs_and_gives_the_documented_shapes():
    code = blocks()
    namespace: dict = {}
    exec(compile(code[0], str(DOC), "exec"), namespace)
    namespace.update(inputs(namespace["key"]))
    results = []
    for block in code[1:]:
        before = {k: v for k, v in namespace.items() if k not in ("m", "chosen")}
        namespace.pop("m", None)
        exec(compile(block, str(DOC), "exec"), namespace)
        results.append({k: v for k, v in namespace.items() if k not in before or before[k] is not v})
    assert all(results), [b for b, r in zip(code[1:], results, strict=True) if not r]
    shapes = {name: np.shape(r["m"].mask) for name, r in zip(range(len(results)), results, strict=True) if "m" in r}
    assert shapes[0] == (4, 196)  # random_mask(key, batch_size=4, num_tokens=196, ...)
    assert shapes[1] == (4, 56 * 56)  # simmim_mask over a 56 x 56 token grid
    hidden = np.asarray(results[2]["m"].mask).sum(1)
    assert shapes[2] == (4, 196) and 60 <= hidden.min() and hidden.max() <= 75  # blockwise: up to its budget
    assert shapes[4] == shapes[5] == shapes[6] == shapes[7] == (4, 8 * 14 * 14)  # the video grids
    assert namespace["out"].input_ids.shape == namespace["ids"].shape  # bert_corruption
    assert namespace["views"].mask.shape[:2] == (3, 4)  # disjoint views: [V, B, ...]
    assert namespace["corrupted"].shape == namespace["images"].shape


def test_the_pictures_are_large_enough_to_read():
    # Before: 96 px tall, with the titles of multiblock.png and maskgit.png cut off at the top.
    from PIL import Image

    for path in sorted((ROOT / "docs" / "masks").glob("*.png")):
        with Image.open(path) as image:
            assert image.width >= 300 and image.height >= 60, (path.name, image.size)  # token strips are short
    for name in ("multiblock", "maskgit", "random", "tube"):
        with Image.open(ROOT / "docs" / "masks" / f"{name}.png") as image:
            assert image.height >= 150, (name, image.size)
