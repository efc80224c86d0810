"""Text data: corpus split, tokenizer cache, packing with segment ids, the `text` data kind, segment-local attention."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.data.corpus import load_documents, split_documents
from mmjax.data.kinds import data_kind
from mmjax.data.text import (
    SPECIAL_TOKENS,
    load_tokenizer,
    pack_documents,
    packed_split,
    special_ids,
    text_data,
    tokenizer_path,
)
from mmjax.models.bert import BertConfig, BertMLM

CLS, SEP, PAD = 2, 3, 0


def test_split_documents_collapses_whitespace_and_drops_short():
    docs = split_documents("A  first\nparagraph.\n\n  \n\nok\n\nThe   third\tone.", min_chars=3)
    assert docs == ["A first paragraph.", "The third one."]


def test_pydoc_split_is_deterministic_and_disjoint():
    train, test, every = (load_documents("pydoc", s) for s in ("train", "test", "all"))
    assert len(test) == len(every) // 10 and len(train) + len(test) == len(every)
    assert test == every[9::10]
    assert train == [d for i, d in enumerate(every) if i % 10 != 9]
    assert load_documents("pydoc", "test") == test
    with pytest.raises(ValueError, match="split must be one of"):
        load_documents("pydoc", "valid")
    with pytest.raises(FileNotFoundError, match="data.corpus='/no/such/file'"):
        load_documents("/no/such/file")


def test_packing_keeps_every_token_and_restarts_positions():
    docs = [list(range(10, 13)), list(range(20, 30)), [40], list(range(50, 55))]
    rows = pack_documents(docs, seq_len=8, cls_id=CLS, sep_id=SEP, pad_id=PAD)
    ids, seg, pos = rows["input_ids"], rows["segment_ids"], rows["positions"]
    assert ids.shape == seg.shape == pos.shape and ids.shape[1] == 8 and ids.dtype == np.int32
    # Reassemble: each segment is [CLS] piece [SEP]; the pieces in order give back the documents.
    pieces = []
    for r in range(len(ids)):
        for s in range(1, seg[r].max() + 1):
            where = seg[r] == s
            seq = ids[r][where]
            assert seq[0] == CLS and seq[-1] == SEP
            np.testing.assert_array_equal(pos[r][where], np.arange(where.sum()))  # restart per document
            pieces.append(seq[1:-1].tolist())
        np.testing.assert_array_equal(ids[r][seg[r] == 0], PAD)
        assert np.all(np.diff(seg[r][seg[r] > 0]) >= 0) and np.all(seg[r][: (seg[r] > 0).sum()] > 0)
    assert sum(pieces, []) == sum(docs, [])
    assert max(len(p) for p in pieces) == 6  # a 10-token document is cut into pieces of L - 2
    with pytest.raises(ValueError, match="data.seq_len=2"):
        pack_documents(docs, 2, CLS, SEP, PAD)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    config = text_data("pydoc", seq_len=32, vocab_size=300)
    config.tokenizer = str(tmp_path_factory.mktemp("tok") / "tokenizer.json")
    return config


def test_tokenizer_is_saved_and_reloaded(small_data):
    tokenizer = load_tokenizer(small_data)
    assert tokenizer_path(small_data) == small_data.tokenizer
    assert special_ids(tokenizer).as_tuple() == tuple(range(len(SPECIAL_TOKENS)))
    from tokenizers import Tokenizer

    again = Tokenizer.from_file(small_data.tokenizer)
    text = "The assert statement raises AssertionError."
    assert again.encode(text).ids == tokenizer.encode(text).ids
    assert again.get_vocab() == tokenizer.get_vocab()


def test_text_kind_batches_match_the_spec(small_data):
    kind = data_kind(small_data)
    assert kind.name == "text"
    spec = kind.batch_spec(small_data, 4)
    batch = next(iter(kind.train_dataset(small_data, 8, 0, 1, 2)))  # process 1 of 2
    assert set(batch) == set(spec)
    for name, s in spec.items():
        assert batch[name].shape == s.shape and batch[name].dtype == s.dtype, name
    rows = packed_split(small_data, "train")["input_ids"]
    own = {r.tobytes() for r in rows[1::2]}
    assert all(r.tobytes() in own for r in batch["input_ids"])  # this process reads its slice only


def test_attention_stays_within_packed_documents():
    cfg = BertConfig(vocab_size=50, width=16, depth=2, heads=2, mlp_dim=32, max_len=16, dropout=0.0)
    model = BertMLM(cfg)
    doc_a, doc_b = [2, 11, 12, 13, 3], [2, 21, 22, 3]
    ids = jnp.asarray([doc_a + doc_b + [0]], jnp.int32)
    seg = jnp.asarray([[1] * 5 + [2] * 4 + [0]], jnp.int32)
    pos = jnp.asarray([list(range(5)) + list(range(4)) + [0]], jnp.int32)
    params = nn.meta.unbox(jax.jit(model.init)(jax.random.key(0), ids, seg, pos)["params"])
    apply = jax.jit(model.apply)
    out = apply({"params": params}, ids, seg, pos)
    changed = apply({"params": params}, ids.at[0, 1:4].set(jnp.asarray([31, 32, 33])), seg, pos)
    np.testing.assert_allclose(changed[0, 5:9], out[0, 5:9], atol=1e-6)  # document B does not see A
    assert not np.allclose(changed[0, :5], out[0, :5], atol=1e-3)
    # B packed after A gives what B alone gives.
    alone = apply({"params": params}, jnp.asarray([doc_b], jnp.int32))
    np.testing.assert_allclose(out[0, 5:9], alone[0], atol=1e-5)
