"""Fine-tune a pretrained series encoder (PatchTST, TimesBERT) to classify a bundled UCR set (2 CPU cores).

  python -m mmjax train --config experiments/patchtst_series.py --workdir /tmp/patchtst
  python -m mmjax finetune --from /tmp/patchtst --config experiments/finetune_series.py --workdir /tmp/patchtst_ft

PatchTST's classification fine-tuning (Nie et al. 2023): the pretrained encoder's `features`
(each channel's patch tokens averaged, channels concatenated) and a linear head, the whole
encoder trained; cross-entropy, AdamW with warmup then cosine, no layer-wise decay. The data
(`series_classes`): a UCR / UEA set bundled with sktime (`data.set`, GunPoint by default: 50
train / 150 test series, two classes), each series resampled to the encoder's window. The
encoder keeps its own per-series normalization (RevIN), so series of any scale feed it.

Variants (`--config experiments/finetune_series.py:set=ArrowHead,classes=3`):
  set          the UCR / UEA set (mmjax.data.series.bundled_ucr_names; univariate unless variates)
  classes      its number of classes
  window       steps per series (the pretrained encoder's window)
  steps        training steps
"""

import ml_collections

from mmjax.config import parse_arg, section_config
from mmjax.data.presets import SeriesClassesData
from mmjax.methods import finetune
from mmjax.train.defaults import training_sections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, set="GunPoint", classes=2, window=96, steps=300)
    config = training_sections(finetune.default_config())
    config.data = section_config(SeriesClassesData, set=variant["set"], window=variant["window"])
    config.finetune.update(num_classes=variant["classes"], pool="mean", label_smoothing=0.0, drop_path=0.0)
    config.train.update(
        steps=variant["steps"],
        batch_size=16,
        lr=1e-3,
        weight_decay=0.01,
        warmup_steps=30,
        log_every=50,
        checkpoint_every=150,
    )
    config.eval.update(batch_size=64)
    return config
