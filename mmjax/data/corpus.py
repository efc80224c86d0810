"""Text corpora as lists of documents, with a deterministic train/test split.

`pydoc` is bundled with every CPython: the reference-manual topics of `pydoc_data.topics`
(about 465,000 characters of English prose and code), so it needs no download. A path
names a user corpus: a `.txt` file or a directory of them, documents separated by blank
lines. Lines made only of punctuation (reST heading underlines `*****`, table rules
`+----+`) are dropped: they would make masked tokens trivially predictable.
"""

from __future__ import annotations

import os
import re
import zlib

BUNDLED = ("pydoc",)
SPLITS = ("train", "test", "all")

_BLANK_LINES = re.compile(r"\n\s*\n")
_SPACES = re.compile(r"\s+")
_RULE_LINE = re.compile(r"^[ \t]*[-=*~^+#_|:.`'\"]{3,}[-=*~^+#_|:.`'\" \t]*$", re.MULTILINE)
# Bump when what `load_documents` returns for the same files changes (tokenizer caches are named by it).
CLEANING_VERSION = 2


def split_documents(text: str, min_chars: int = 1) -> list[str]:
    """Blank-line-separated paragraphs, punctuation-only lines removed, whitespace collapsed; short ones dropped."""
    docs = (_SPACES.sub(" ", _RULE_LINE.sub("", part)).strip() for part in _BLANK_LINES.split(text))
    return [d for d in docs if len(d) >= max(1, min_chars)]


def pydoc_text() -> str:
    """The bundled Python reference-manual topics, in sorted topic order, one text."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name] for name in sorted(topics))


def corpus_fingerprint(corpus: str) -> str:
    """Changes when the documents of `corpus` may change: Python version for `pydoc`, size and mtime of files."""
    import sys

    if corpus == "pydoc":
        return f"py{sys.version_info.major}.{sys.version_info.minor}-c{CLEANING_VERSION}"
    files = [corpus]
    if os.path.isdir(corpus):
        files = sorted(os.path.join(corpus, f) for f in os.listdir(corpus) if f.endswith(".txt"))
    stats = [(f, os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files if os.path.exists(f)]
    return f"{zlib.crc32(repr((stats, CLEANING_VERSION)).encode()):08x}"


def _read_path(path: str) -> str:
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".txt"))
        if not files:
            raise FileNotFoundError(f"data.corpus={path!r} is a directory without .txt files")
        return "\n\n".join(_read_file(f) for f in files)
    if os.path.isfile(path):
        return _read_file(path)
    raise FileNotFoundError(f"data.corpus={path!r}: expected one of {BUNDLED}, a .txt file or a directory of them")


def _read_file(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def load_documents(corpus: str, split: str = "train", *, test_every: int = 10, min_chars: int = 20) -> list[str]:
    """Documents of `corpus` (`"pydoc"` or a path) in corpus order.

    Document `i` is held out for `test` when `i % test_every == test_every - 1`, so the
    split is deterministic and spread over the whole corpus; `all` returns every document.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if test_every < 2:
        raise ValueError(f"data.test_every must be >= 2, got {test_every}")
    text = pydoc_text() if corpus == "pydoc" else _read_path(corpus)
    docs = split_documents(text, min_chars)
    if split == "all":
        return docs
    held_out = [i % test_every == test_every - 1 for i in range(len(docs))]
    return [d for d, h in zip(docs, held_out, strict=True) if h == (split == "test")]
