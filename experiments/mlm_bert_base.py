"""BERT-base MLM (12 layers x 768, 12 heads) on a user corpus: the paper-scale configuration.

Devlin et al. 2019 pretrain 90% of the steps at 128 tokens and 10% at 512, batch 256,
AdamW lr 1e-4 (b2 0.999, weight decay 0.01, 10k warmup; linear decay there, mmjax's
trainer decays with a cosine), dropout 0.1, 15%
masking with 80/10/10 and at most 20 (128) / 80 (512) predictions per sequence. Wettig et
al. 2023 find 40% masking better for large models (`rate=0.4`).

Variants: `corpus=PATH` (a .txt file or a directory of them; documents are separated by
blank lines), `tokenizer=PATH` (a `tokenizer.json`, e.g. bert-base-uncased's; trained and
saved there when missing), `seq_len=128|512`, `selection=...`, `rate=0.15`, `steps=N`,
`runlocal` (a tiny model on the bundled pydoc text, to check the wiring on a laptop).
"""

import math

import ml_collections

from mmjax.config import parse_arg
from mmjax.data.text import text_data
from mmjax.methods import mlm
from mmjax.train.defaults import training_sections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(
        arg,
        corpus="pydoc",
        tokenizer="",
        seq_len=128,
        selection="random",
        rate=0.15,
        steps=1_000_000,
        runlocal=False,
    )
    config = training_sections(mlm.default_config())
    config.model.update(size="base", vocab_size=None, max_len=512, dropout=0.1)
    config.data = text_data(variant["corpus"], seq_len=variant["seq_len"], vocab_size=30522)
    config.data.tokenizer = variant["tokenizer"]
    max_predictions = math.ceil(variant["rate"] * variant["seq_len"]) + 1
    config.mlm.update(selection=variant["selection"], rate=variant["rate"], max_predictions=max_predictions)
    config.train.update(
        steps=variant["steps"],
        batch_size=256,
        lr=1e-4,
        warmup_steps=10_000,
        weight_decay=0.01,
        b1=0.9,
        b2=0.999,
        grad_clip=1.0,
        log_every=100,
        checkpoint_every=10_000,
    )
    if variant["runlocal"]:
        config.model.update(size="tiny", max_len=variant["seq_len"])
        config.data.vocab_size = 2000
        config.train.update(steps=20, batch_size=8, warmup_steps=2, log_every=5, checkpoint_every=20)
    return config
