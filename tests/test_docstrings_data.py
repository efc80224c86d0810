"""The `text_classes` data kind: standard-library docstrings labelled by their package."""

import numpy as np
import pytest

from mmjax.config import section_config
from mmjax.data.docstrings import docstring_split, encode_texts, labelled_docstrings
from mmjax.data.kinds import data_kind
from mmjax.data.presets import TextClassesData
from mmjax.data.text import load_tokenizer, special_ids, text_data, tokenizer_path
from mmjax.errors import user_message

pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def data():
    corpus = text_data(vocab_size=300, seq_len=32)
    load_tokenizer(corpus)  # trained on the pydoc corpus once, then a file
    return section_config(TextClassesData, tokenizer=tokenizer_path(corpus), seq_len=32), load_tokenizer(corpus)


def test_every_docstring_has_one_package_and_the_splits_are_disjoint(data):
    config, tokenizer = data
    packages = tuple(config.packages)
    examples = labelled_docstrings(packages, config.min_chars)
    texts = [doc for doc, _ in examples]
    assert len(texts) == len(set(texts)) > 800
    assert all(len(doc) >= config.min_chars for doc in texts)
    counts = np.bincount([label for _, label in examples], minlength=len(packages))
    assert counts.min() >= 50, dict(zip(packages, counts, strict=True))
    train, test = docstring_split(config, "train"), docstring_split(config, "test")
    assert len(train["label"]) + len(test["label"]) == len(examples)
    assert len(test["label"]) == len(examples) // config.test_every
    rows = {tuple(r) for r in train["input_ids"]}
    assert sum(tuple(r) in rows for r in test["input_ids"]) < 0.05 * len(test["label"])  # cut rows may coincide


def test_rows_are_cls_text_sep_then_padding(data):
    config, tokenizer = data
    ids = special_ids(tokenizer)
    rows = encode_texts(tokenizer, ["a short docstring", "word " * 100], 16)
    short = tokenizer.encode("a short docstring", add_special_tokens=False).ids
    assert list(rows[0, : len(short) + 2]) == [ids.cls, *short, ids.sep]
    assert set(rows[0, len(short) + 2 :]) == {ids.pad}
    assert rows[1, 0] == ids.cls and rows[1, -1] == ids.sep and ids.pad not in rows[1]  # cut to L - 2 tokens


def test_batches_match_their_spec_and_the_evaluation_reads_every_test_example(data):
    config, _ = data
    kind = data_kind(config)
    spec = kind.batch_spec(config, 16)
    batch = next(iter(kind.train_dataset(config, 16, 0, 0, 1)))
    assert {k: (v.shape, v.dtype) for k, v in batch.items()} == {k: (s.shape, s.dtype) for k, s in spec.items()}
    batches = list(kind.eval_batches(config, "test", 100))
    labels = np.concatenate([b["label"] for b in batches])
    np.testing.assert_array_equal(labels, docstring_split(config, "test")["label"])


def test_the_task_is_learnable_from_words_alone(data):
    # A bag of tokens and a logistic regression (scikit-learn) beat the most frequent package by far.
    from sklearn.linear_model import LogisticRegression

    config, _ = data
    train, test = docstring_split(config, "train"), docstring_split(config, "test")

    def bags(rows):
        out = np.zeros((len(rows), 300), np.float32)
        for i, row in enumerate(rows):
            np.add.at(out[i], row, 1.0)
        return out

    model = LogisticRegression(max_iter=2000).fit(bags(train["input_ids"]), train["label"])
    accuracy = np.mean(model.predict(bags(test["input_ids"])) == test["label"])
    majority = np.max(np.bincount(test["label"])) / len(test["label"])
    assert accuracy > majority + 0.25, (accuracy, majority)


def test_a_missing_tokenizer_is_named_in_one_line():
    with pytest.raises(ValueError) as caught:
        docstring_split(section_config(TextClassesData), "train")
    message = user_message(caught.value)
    assert message.startswith("data.tokenizer is empty") and "\n" not in message
