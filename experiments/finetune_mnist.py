"""Fine-tune a pretrained encoder on the bundled MNIST subset: a linear head, the whole ViT trained (2 CPU cores).

  python -m mmjax train --config experiments/mae_mnist.py --workdir /tmp/mae_mnist
  python -m mmjax train --config experiments/finetune_mnist.py:from=/tmp/mae_mnist --workdir /tmp/mae_mnist_ft

MAE's fine-tuning recipe (He et al. 2022, Table 9) scaled to this data: AdamW (0.9, 0.999),
weight decay 0.05, label smoothing 0.1, layer-wise lr decay 0.75 (MAE: 0.65 for ViT-B, 0.75 for
ViT-L; the 4-block encoder of `mae_mnist.py` is shallower), warmup then cosine; batch 128 at lr
1e-3 for 1,000 steps. The run ends with the top-1 accuracy of the classifier on the 1,000
held-out digits. Any run with an `encoder` hook can be the start (MAE, SimMIM, BEiT, a
distilled student), as long as its images are 28 x 28 with one channel.

Variants (`--config experiments/finetune_mnist.py:from=/tmp/mae_mnist,steps=500`):
  from         the pretrained run's workdir
  steps        training steps
  layer_decay  the layer-wise learning-rate decay (1 = off)
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import finetune
from mmjax.train.defaults import training_sections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, **{"from": "/tmp/mae_mnist", "steps": 1000, "layer_decay": 0.75})
    config = training_sections(finetune.default_config())
    config.finetune.update(from_workdir=variant["from"], num_classes=10, pool="cls", label_smoothing=0.1)
    config.data = presets.mnist()
    config.train.update(
        steps=variant["steps"],
        batch_size=128,
        lr=1e-3,
        b2=0.999,
        weight_decay=0.05,
        layer_decay=variant["layer_decay"],
        warmup_steps=100,
        log_every=100,
        checkpoint_every=500,
    )
    return config
