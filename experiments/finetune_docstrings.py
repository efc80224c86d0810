"""Fine-tune a pretrained BERT MLM to tell which standard-library package wrote a docstring (2 CPU cores).

  python -m mmjax train --config experiments/mlm_pydoc.py --workdir /tmp/mlm_pydoc
  python -m mmjax finetune --from /tmp/mlm_pydoc --config experiments/finetune_docstrings.py --workdir /tmp/mlm_ft

Sequence classification as BERT's fine-tuning (Devlin et al. 2019): the pretrained encoder and a
linear head on the `[CLS]` token's output (BERT's pooler, a tanh layer trained on next-sentence
prediction, is not there: these MLMs have none), cross-entropy, AdamW with warmup then cosine
decay, every layer trained. The task (`mmjax.data.docstrings`, data kind
`text_classes`): 1,453 docstrings of eight packages (`asyncio`, `email`, `xml`, `logging`,
`multiprocessing`, `http`, `importlib`, `typing`), one fifth held out; rows of 64 tokens in the
pretrained run's WordPiece vocabulary (`data.tokenizer`, filled in from `--from`). Batch 32 at
lr 1e-3 for 600 steps (about 16 epochs), layer-wise lr decay 0.9, no label smoothing. Drop path
and Mixup / CutMix are image-only and off.

Variants (`--config experiments/finetune_docstrings.py:steps=300`):
  steps        training steps
  layer_decay  the layer-wise learning-rate decay (1 = off)
  pool         cls | mean (the mean of the non-padding tokens)
"""

import ml_collections

from mmjax.config import parse_arg, section_config
from mmjax.data.presets import TextClassesData
from mmjax.methods import finetune
from mmjax.train.defaults import training_sections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, steps=600, layer_decay=0.9, pool="cls")
    config = training_sections(finetune.default_config())
    config.data = section_config(TextClassesData, seq_len=64)
    packages = len(config.data.packages)
    config.finetune.update(num_classes=packages, pool=variant["pool"], label_smoothing=0.0, drop_path=0.0)
    config.train.update(
        steps=variant["steps"],
        batch_size=32,
        lr=1e-3,
        weight_decay=0.01,
        b2=0.98,
        grad_clip=1.0,
        layer_decay=variant["layer_decay"],
        warmup_steps=60,
        log_every=100,
        checkpoint_every=300,
    )
    config.eval.update(batch_size=64)
    return config
