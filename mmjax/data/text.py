"""Text data: a WordPiece tokenizer, packing of documents into fixed-length rows, the `text` data kind.

A host batch of kind `text` holds, for `B` rows of `L = data.seq_len` tokens:

- `input_ids` int32 `[B, L]`: `[CLS] doc [SEP] [CLS] doc [SEP] ... [PAD]...`;
- `segment_ids` int32 `[B, L]`: which packed document a token belongs to (1, 2, ...; 0 = padding);
  attention stays within a segment;
- `positions` int32 `[B, L]`: position within its document, restarting at 0 at each `[CLS]`.

A document longer than `L - 2` tokens is cut into pieces, each with its own `[CLS]`/`[SEP]`.
Rows are filled greedily in corpus order; no token is dropped.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Sequence
from typing import Any

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.config import section_config
from mmjax.data.corpus import corpus_fingerprint, load_documents
from mmjax.data.pipeline import batched_stream, per_process_batch_size
from mmjax.data.presets import TextData, complete_data
from mmjax.data.registry import DataKind, register_data_kind

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
FIELDS = ("input_ids", "segment_ids", "positions")


def text_data(corpus: str = "pydoc", seq_len: int = 128, vocab_size: int = 4000) -> ml_collections.ConfigDict:
    """A `data` config section of kind `text`.

    `tokenizer`: a `tokenizer.json` path. When it exists it is loaded; otherwise a WordPiece
    tokenizer of `vocab_size` is trained on the train split and written there, so a resumed
    run and `python -m mmjax eval` use the very same vocabulary (the `tokenizers` trainer
    breaks ties differently from process to process). Empty: a file named after the
    corpus and settings in `$MMJAX_CACHE` (default `~/.cache/mmjax`) `/tokenizers/`.
    """
    return section_config(TextData, corpus=corpus, seq_len=seq_len, vocab_size=vocab_size)


@dataclasses.dataclass(frozen=True)
class SpecialIds:
    """Ids of the special tokens a BERT tokenizer must have."""

    pad: int
    unk: int
    cls: int
    sep: int
    mask: int

    def as_tuple(self) -> tuple[int, ...]:
        return (self.pad, self.unk, self.cls, self.sep, self.mask)


def train_tokenizer(docs: Sequence[str], vocab_size: int, *, lowercase: bool = True) -> Any:
    """A BERT-style WordPiece `tokenizers.Tokenizer` trained on `docs`; specials are ids 0..4 (`SPECIAL_TOKENS`)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"data.vocab_size={vocab_size} must exceed the {len(SPECIAL_TOKENS)} special tokens")
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), min_frequency=2)
    tokenizer.train_from_iterator(list(docs), trainer)
    return tokenizer


def special_ids(tokenizer: Any) -> SpecialIds:
    """The ids of `[PAD] [UNK] [CLS] [SEP] [MASK]` in `tokenizer`; a clear error when one is missing."""
    ids = {name: tokenizer.token_to_id(name) for name in SPECIAL_TOKENS}
    missing = [name for name, i in ids.items() if i is None]
    if missing:
        raise ValueError(f"the tokenizer has no {missing}; a BERT tokenizer needs all of {list(SPECIAL_TOKENS)}")
    return SpecialIds(*(ids[name] for name in SPECIAL_TOKENS))


def _key(data_config: Any) -> tuple:
    """What the tokenizer and the packed rows depend on (hashable, for the caches)."""
    data_config = complete_data(TextData, data_config)
    return (
        data_config.corpus,
        tokenizer_path(data_config),
        data_config.vocab_size,
        data_config.lowercase,
        data_config.test_every,
        data_config.min_chars,
    )


def tokenizer_path(data_config: Any) -> str:
    """Where the tokenizer of `data_config` is read from or saved to (see `text_data`)."""
    data_config = complete_data(TextData, data_config)
    path = data_config.tokenizer
    if path:
        return path
    corpus, vocab_size, lowercase = data_config.corpus, data_config.vocab_size, data_config.lowercase
    test_every, min_chars = data_config.test_every, data_config.min_chars
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.abspath(corpus) if os.path.exists(corpus) else corpus).strip("_")
    cache = os.environ.get("MMJAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "mmjax"))
    settings = f"v{vocab_size}-{'lower' if lowercase else 'cased'}-test{test_every}-min{min_chars}"
    settings += f"-{corpus_fingerprint(corpus)}"
    return os.path.join(cache, "tokenizers", f"{name}-wordpiece-{settings}.json")


def load_tokenizer(data_config: Any) -> Any:
    """The tokenizer of `data_config`: loaded from `tokenizer_path`, or trained and saved there."""
    return _tokenizer(_key(data_config))


@functools.lru_cache(maxsize=8)
def _tokenizer(key: tuple) -> Any:
    from tokenizers import Tokenizer

    corpus, path, vocab_size, lowercase, test_every, min_chars = key
    if os.path.exists(path):
        tokenizer = Tokenizer.from_file(path)
    else:
        if jax.process_count() > 1:
            raise FileNotFoundError(
                f"data.tokenizer={path!r} does not exist; with {jax.process_count()} processes each would train "
                "its own vocabulary: train it once first (mmjax.data.text.load_tokenizer on one process)"
            )
        docs = load_documents(corpus, "train", test_every=test_every, min_chars=min_chars)
        tokenizer = train_tokenizer(docs, vocab_size, lowercase=lowercase)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        tokenizer.save(tmp)
        os.replace(tmp, path)
    special_ids(tokenizer)
    return tokenizer


def pack_documents(docs: Sequence[Sequence[int]], seq_len: int, cls_id: int, sep_id: int, pad_id: int) -> dict:
    """Pack tokenized documents (no specials) into rows.

    Args:
      docs: token ids of each document.
      seq_len: row length `L` (at least 3).
      cls_id, sep_id, pad_id: special ids.

    Returns:
      `input_ids`, `segment_ids`, `positions`: int32 `[N, L]` (see the module docstring).
    """
    if seq_len < 3:
        raise ValueError(f"data.seq_len={seq_len} must be at least 3 ([CLS] token [SEP])")
    body = seq_len - 2
    pieces = [doc[i : i + body] for doc in docs for i in range(0, len(doc), body)]
    rows: list[list[np.ndarray]] = []
    used = seq_len  # forces a new row for the first piece
    for piece in pieces:
        size = len(piece) + 2
        if used + size > seq_len:
            rows.append([])
            used = 0
        rows[-1].append(np.concatenate([[cls_id], np.asarray(piece, np.int64), [sep_id]]))
        used += size
    out = {
        "input_ids": np.full((len(rows), seq_len), pad_id, np.int32),
        "segment_ids": np.zeros((len(rows), seq_len), np.int32),
        "positions": np.zeros((len(rows), seq_len), np.int32),
    }
    for r, row in enumerate(rows):
        start = 0
        for s, seq in enumerate(row):
            end = start + len(seq)
            out["input_ids"][r, start:end] = seq
            out["segment_ids"][r, start:end] = s + 1
            out["positions"][r, start:end] = np.arange(len(seq))
            start = end
    return out


def packed_split(data_config: Any, split: str) -> dict[str, np.ndarray]:
    """Packed rows of `split` (`train` / `test`) of `data.corpus`: int32 `[N, L]` arrays (cached)."""
    return _packed(_key(data_config), split, data_config.seq_len)


@functools.lru_cache(maxsize=8)
def _packed(key: tuple, split: str, seq_len: int) -> dict[str, np.ndarray]:
    corpus, _, _, _, test_every, min_chars = key
    tokenizer = _tokenizer(key)
    ids = special_ids(tokenizer)
    docs = load_documents(corpus, split, test_every=test_every, min_chars=min_chars)
    if not docs:
        raise ValueError(f"data.corpus={corpus!r} has no {split} documents")
    tokens = [e.ids for e in tokenizer.encode_batch(docs, add_special_tokens=False)]
    return pack_documents(tokens, seq_len, ids.cls, ids.sep, ids.pad)


def token_counts(data_config: Any, vocab_size: int) -> np.ndarray:
    """How often each id occurs in the packed train split (specials included): int64 `[vocab_size]`."""
    ids = packed_split(data_config, "train")["input_ids"]
    return np.bincount(ids.reshape(-1), minlength=vocab_size)[:vocab_size].astype(np.int64)


@dataclasses.dataclass(frozen=True, eq=False)
class NgramLexicon:
    """The K most frequent n-grams of a token stream (ERNIE-Gram's n-gram vocabulary), class = rank.

    Attributes:
      ngrams: int32 `[K, max_n]`, class k's token ids, padded with -1 after its length;
        most frequent first.
      counts: int64 `[K]`, how often each occurs.
    """

    ngrams: np.ndarray
    counts: np.ndarray

    @property
    def max_n(self) -> int:
        return self.ngrams.shape[1]

    def __len__(self) -> int:
        return len(self.ngrams)

    def search_table(self) -> tuple[np.ndarray, np.ndarray]:
        """`(rows, classes)`: `ngrams` in lexicographic order (int32 `[K, max_n]`) and the class of each (`[K]`),
        for a binary search under `jit` (`mmjax.methods.ngram_targets.ngram_classes`)."""
        order = np.lexsort(self.ngrams.T[::-1]) if len(self) else np.zeros(0, np.int64)
        return self.ngrams[order], order.astype(np.int32)


def ngram_lexicon(
    ids: Any,
    max_n: int,
    size: int,
    *,
    valid: Any = None,
    unit_starts: Any = None,
    min_count: int = 1,
) -> NgramLexicon:
    """The `size` most frequent n-grams, `n = 2..max_n` tokens, of `ids` (counted with overlaps).

    Args:
      ids: int, a 1-D token stream or `[N, L]` rows (an n-gram never crosses a row).
      max_n: longest n-gram, in tokens.
      size: K, the lexicon's size at most.
      valid: bool, like `ids`: tokens an n-gram may hold (False breaks it: specials, padding).
        None: all.
      unit_starts: bool, like `ids`: an n-gram starts at one and ends just before one (or at a
        row's end), so it holds whole units (words; `mmjax.masking.text.unit_starts`). None: every
        token is a unit.
      min_count: n-grams seen fewer times are left out (the lexicon may then hold fewer than `size`).

    Returns:
      `NgramLexicon`, ordered by count, descending; ties by the ids as a tuple, ascending (as
      Python orders tuples: a prefix before its extensions).
    """
    if max_n < 2 or size < 0 or min_count < 1:
        raise ValueError(f"need max_n >= 2, size >= 0, min_count >= 1; got {max_n}, {size}, {min_count}")
    ids = np.atleast_2d(np.asarray(ids)).astype(np.int64)
    valid = np.ones(ids.shape, bool) if valid is None else np.atleast_2d(np.asarray(valid, bool))
    starts = np.ones(ids.shape, bool) if unit_starts is None else np.atleast_2d(np.asarray(unit_starts, bool))
    length = ids.shape[1]
    # ends_before[:, j]: a unit starts at j (or j is the row's end), so an n-gram may end at j - 1.
    ends_before = np.concatenate([starts, np.ones((len(ids), 1), bool)], axis=1)
    grams, counts = [], []
    for n in range(2, min(max_n, length) + 1):
        ok = starts[:, : length - n + 1] & ends_before[:, n:]
        for j in range(n):
            ok = ok & valid[:, j : length - n + 1 + j]
        windows = np.stack([ids[:, j : length - n + 1 + j][ok] for j in range(n)], axis=1)
        if not len(windows):
            continue
        unique, count = np.unique(windows, axis=0, return_counts=True)
        grams.append(np.pad(unique, ((0, 0), (0, max_n - n)), constant_values=-1))
        counts.append(count)
    if not grams:
        return NgramLexicon(np.zeros((0, max_n), np.int32), np.zeros(0, np.int64))
    grams, counts = np.concatenate(grams), np.concatenate(counts)
    keep = counts >= min_count
    grams, counts = grams[keep], counts[keep]
    order = np.lexsort((*grams.T[::-1], -counts))[:size]  # the last key sorts first
    return NgramLexicon(grams[order].astype(np.int32), counts[order].astype(np.int64))


def continuation_table(tokenizer: Any, vocab_size: int) -> np.ndarray:
    """bool `[vocab_size]`: True for WordPiece continuations (`##...`), which never start a word."""
    table = np.zeros(vocab_size, bool)
    for token, i in tokenizer.get_vocab().items():
        if i < vocab_size and token.startswith("##"):
            table[i] = True
    return table


def text_train_dataset(
    data_config: Any, global_batch_size: int, seed: int, process_index: int, process_count: int
) -> grain.IterDataset:
    """Endless shuffled batches of packed train rows (this process's slice), reshuffled every epoch."""
    data_config = complete_data(TextData, data_config)
    rows = packed_split(data_config, "train")
    records = [{name: rows[name][i] for name in FIELDS} for i in range(len(rows["input_ids"]))]
    ds = grain.MapDataset.source(records)[process_index::process_count]
    batch = per_process_batch_size(global_batch_size, process_count)
    if len(ds) < batch:
        raise ValueError(
            f"train.batch_size={global_batch_size}: the train split of data.corpus={data_config.corpus!r} has only "
            f"{len(ds)} rows of data.seq_len={data_config.seq_len} per process"
        )
    return batched_stream(ds.shuffle(seed=seed).repeat(None), global_batch_size, process_count, data_config)


def text_batch_spec(data_config: Any, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    """Host text batches: `input_ids`, `segment_ids`, `positions`, each int32 `[B, L]`."""
    data_config = complete_data(TextData, data_config)
    return {name: jax.ShapeDtypeStruct((batch_size, data_config.seq_len), jnp.int32) for name in FIELDS}


TEXT = register_data_kind(DataKind("text", text_train_dataset, text_batch_spec))
