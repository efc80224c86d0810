"""Labelled text bundled with every CPython: standard-library docstrings, labelled by their package.

The `text_classes` data kind is a sequence-classification task for fine-tuning a text encoder
(`python -m mmjax finetune` from an MLM run): each example is one docstring of a module, class,
function or method defined in one of `data.packages` (`asyncio`, `email`, `xml`, ...), and its
label is that package's index. Which package wrote a docstring is learnable from its words
(`loop`, `header`, `element`, `handler`) and never from a marker: a docstring that two packages
share is dropped. The docstrings are prose and code like the `pydoc` corpus the MLMs pretrain
on, and not part of it (that corpus is the language reference).

A host batch holds `input_ids` int32 `[B, L]` (`[CLS] docstring [SEP] [PAD]...`, the docstring
cut to `L - 2` tokens) and `label` int32 `[B]`. Every `test_every`-th docstring of the sorted
list is a test example. `data.tokenizer` is the one the encoder was pretrained with: its
`tokenizer.json`, or the pretrained run's workdir (`python -m mmjax finetune --from RUN` fills it in).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import os
import pkgutil
import re
import warnings
from typing import Any

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.data.pipeline import batched_stream, per_process_batch_size
from mmjax.data.presets import TextClassesData, complete_data
from mmjax.data.registry import DataKind, register_data_kind
from mmjax.data.text import special_ids, tokenizer_path

_SPACES = re.compile(r"\s+")


def package_docstrings(package: str, min_chars: int) -> set[str]:
    """The docstrings (whitespace collapsed, at least `min_chars` long) of what `package` and its
    importable submodules define: modules, classes, functions and the methods of those classes."""
    root = importlib.import_module(package)
    modules = [root]
    for info in pkgutil.walk_packages(getattr(root, "__path__", []), f"{package}."):
        if ".test" in info.name or info.name.endswith("__main__"):
            continue
        try:
            modules.append(importlib.import_module(info.name))
        except Exception:  # a submodule for another platform (e.g. asyncio.windows_events)
            continue
    docs = set()
    with warnings.catch_warnings():  # reading `typing.io`'s docstring warns that it is deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        for module in modules:
            docs |= module_docstrings(module, min_chars)
    return docs


def module_docstrings(module: Any, min_chars: int) -> set[str]:
    """The docstrings of `module`, of what it defines, and of the methods of its classes."""
    objects = [module]
    for value in vars(module).values():
        if getattr(value, "__module__", None) != module.__name__:
            continue
        objects.append(value)
        if inspect.isclass(value):
            objects.extend(v for v in vars(value).values() if inspect.isfunction(v))
    docs = (_SPACES.sub(" ", inspect.getdoc(obj) or "").strip() for obj in objects)
    return {doc for doc in docs if len(doc) >= min_chars}


@functools.lru_cache(maxsize=4)
def labelled_docstrings(packages: tuple[str, ...], min_chars: int) -> tuple[tuple[str, int], ...]:
    """Every `(docstring, package index)`, sorted by text; docstrings found in two packages are dropped."""
    found = [package_docstrings(p, min_chars) for p in packages]
    seen_in = {}
    for label, docs in enumerate(found):
        for doc in docs:
            seen_in[doc] = label if doc not in seen_in else -1
    return tuple(sorted((doc, label) for doc, label in seen_in.items() if label >= 0))


def encode_texts(tokenizer: Any, texts: list[str], seq_len: int) -> np.ndarray:
    """`[CLS] text [SEP]` then padding, each text cut to `seq_len - 2` tokens: int32 `[N, seq_len]`."""
    ids = special_ids(tokenizer)
    rows = np.full((len(texts), seq_len), ids.pad, np.int32)
    for i, encoding in enumerate(tokenizer.encode_batch(texts, add_special_tokens=False)):
        body = [ids.cls, *encoding.ids[: seq_len - 2], ids.sep]
        rows[i, : len(body)] = body
    return rows


def docstring_split(data_config: Any, split: str) -> dict[str, np.ndarray]:
    """`input_ids` int32 `[N, L]` and `label` int32 `[N]` of `split` (`train` / `test`)."""
    data_config = complete_data(TextClassesData, data_config)
    tokenizer = tokenizer_file(data_config.tokenizer)
    return _split(
        tuple(data_config.packages),
        tokenizer,
        data_config.seq_len,
        data_config.test_every,
        data_config.min_chars,
        split,
    )


def tokenizer_file(tokenizer: str) -> str:
    """`data.tokenizer` as a `tokenizer.json` path: the file itself, or the tokenizer of the text run whose
    workdir it names (read from that run's `config.json`)."""
    if not tokenizer:
        raise ValueError(
            "data.tokenizer is empty; text_classes needs the tokenizer.json the text encoder was pretrained with, "
            "or that run's workdir"
        )
    run_config = os.path.join(tokenizer, "config.json")
    if os.path.isdir(tokenizer) and os.path.exists(run_config):
        with open(run_config) as f:
            data = json.load(f).get("data", {})
        if data.get("kind") != "text":
            raise ValueError(f"data.tokenizer={tokenizer!r}: that run's data.kind is {data.get('kind')!r}, not 'text'")
        tokenizer = tokenizer_path(ml_collections.ConfigDict(data))
    if not os.path.isfile(tokenizer):
        raise FileNotFoundError(f"data.tokenizer={tokenizer!r} is not a tokenizer.json file or a text run's workdir")
    return tokenizer


@functools.lru_cache(maxsize=8)
def _split(packages: tuple[str, ...], tokenizer: str, seq_len: int, test_every: int, min_chars: int, split: str):
    from tokenizers import Tokenizer

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    examples = labelled_docstrings(packages, min_chars)
    kept = [e for i, e in enumerate(examples) if (i % test_every == test_every - 1) == (split == "test")]
    rows = encode_texts(Tokenizer.from_file(tokenizer), [doc for doc, _ in kept], seq_len)
    return {"input_ids": rows, "label": np.array([label for _, label in kept], np.int32)}


def docstrings_train_dataset(
    data_config: Any, global_batch_size: int, seed: int, process_index: int, process_count: int
) -> grain.IterDataset:
    """Endless shuffled batches of the train docstrings (this process's slice), reshuffled every epoch."""
    ds = grain.MapDataset.source(records(docstring_split(data_config, "train")))[process_index::process_count]
    if len(ds) < per_process_batch_size(global_batch_size, process_count):
        raise ValueError(f"train.batch_size={global_batch_size}: the train split has only {len(ds)} docstrings")
    return batched_stream(ds.shuffle(seed=seed).repeat(None), global_batch_size, process_count, data_config)


def docstrings_batch_spec(data_config: Any, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    """Host batches: `input_ids` int32 `[B, L]`, `label` int32 `[B]`."""
    data_config = complete_data(TextClassesData, data_config)
    return {
        "input_ids": jax.ShapeDtypeStruct((batch_size, data_config.seq_len), jnp.int32),
        "label": jax.ShapeDtypeStruct((batch_size,), jnp.int32),
    }


def docstrings_eval_dataset(data_config: Any, split: str, batch_size: int) -> grain.MapDataset:
    """All of `split` in order, batched (last batch kept), with labels."""
    return grain.MapDataset.source(records(docstring_split(data_config, split))).batch(batch_size, drop_remainder=False)


def records(rows: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """One dict per example of a split's arrays."""
    return [{"input_ids": ids, "label": label} for ids, label in zip(rows["input_ids"], rows["label"], strict=True)]


TEXT_CLASSES = register_data_kind(
    DataKind(
        "text_classes",
        docstrings_train_dataset,
        docstrings_batch_spec,
        eval_dataset=docstrings_eval_dataset,
    )
)

__all__ = [
    "TEXT_CLASSES",
    "docstring_split",
    "encode_texts",
    "labelled_docstrings",
    "package_docstrings",
]
