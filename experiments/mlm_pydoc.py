"""BERT MLM on the Python reference manual bundled with CPython (`pydoc_data.topics`): minutes on 2 CPU cores.

A 2-layer, 128-wide BERT over a 4,000-token WordPiece vocabulary trained on the train
split, rows of 64 packed tokens; the vocabulary head runs only at the chosen positions
(`mlm.max_predictions`). At the end, masked-token accuracy on the held-out
documents is printed next to the unigram baseline.

Variants: `steps=N`, `selection=random|span|ngram|frequency_weighted`, `rate=0.15`.
"""

import math

import ml_collections

from mmjax.config import parse_arg
from mmjax.data.text import text_data
from mmjax.methods import mlm
from mmjax.train.defaults import training_sections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, steps=1000, selection="random", rate=0.15)
    config = training_sections(mlm.default_config())
    config.model.update(size=None, width=128, depth=2, heads=4, mlp_dim=512, max_len=64, dropout=0.0)
    config.data = text_data("pydoc", seq_len=64, vocab_size=4000)
    # A row has at most round(rate * 62) chosen tokens; BERT's max_predictions_per_seq is the same idea.
    max_predictions = math.ceil(variant["rate"] * config.data.seq_len) + 4
    config.mlm.update(selection=variant["selection"], rate=variant["rate"], max_predictions=max_predictions)
    config.train.update(
        steps=variant["steps"],
        batch_size=32,
        lr=2e-3,
        warmup_steps=50,
        weight_decay=0.01,
        b2=0.98,
        grad_clip=1.0,
        log_every=100,
        checkpoint_every=500,
    )
    config.eval.update(batch_size=64)
    return config
