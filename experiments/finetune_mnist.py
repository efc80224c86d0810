"""Fine-tune a pretrained encoder on the bundled MNIST subset: a linear head, the whole ViT trained (2 CPU cores).

  python -m mmjax train --config experiments/mae_mnist.py --workdir /tmp/mae_mnist
  python -m mmjax train --config experiments/finetune_mnist.py:from=/tmp/mae_mnist --workdir /tmp/mae_mnist_ft

MAE's fine-tuning recipe (He et al. 2022, Table 9) scaled to this data: AdamW (0.9, 0.999),
weight decay 0.05, label smoothing 0.1, layer-wise lr decay 0.75 (MAE: 0.65 for ViT-B, 0.75 for
ViT-L; the 4-block encoder of `mae_mnist.py` is shallower), warmup then cosine; batch 128 at
lr 1e-3 for 1,000 steps. Drop path (MAE: 0.1) and Mixup (0.8) / CutMix (1.0) are off here, a
measured deviation: on MAE's encoder at 300 fine-tuning steps, drop path 0.1 gave 89.8 / 90.2%
and Mixup + CutMix 87.4 / 88.0% against 91.2 / 91.0% without either (two seeds,
`benchmarks/RESULTS.md`); `drop_path=0.1`, `mixup=0.8,cutmix=1.0` turn them on. The run ends
with the top-1 accuracy of the classifier on the 1,000 held-out digits. Any run with an
`encoder` hook can be the start (MAE, SimMIM, BEiT, a distilled student; I-JEPA with
`--config.finetune.pool=mean`), as long as its images are `size` x `size` with one channel
(`size=32` for SimMIM's and BEiT's 32 x 32 encoders).

Variants (`--config experiments/finetune_mnist.py:from=/tmp/mae_mnist,steps=500`):
  from         the pretrained run's workdir
  steps        training steps
  layer_decay  the layer-wise learning-rate decay (1 = off)
  drop_path    stochastic depth of the last block (0 = off)
  mixup        Mixup's alpha (0 = off)
  cutmix       CutMix's alpha (0 = off)
  size         the digits' side in pixels (the encoder's image size)
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import finetune
from mmjax.train.defaults import training_sections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    recipe = {"steps": 1000, "layer_decay": 0.75, "drop_path": 0.0, "mixup": 0.0, "cutmix": 0.0, "size": 28}
    variant = parse_arg(arg, **{"from": "/tmp/mae_mnist", **recipe})
    config = training_sections(finetune.default_config())
    config.finetune.update(from_workdir=variant["from"], num_classes=10, pool="cls", label_smoothing=0.1)
    config.finetune.update(drop_path=variant["drop_path"], mixup=variant["mixup"], cutmix=variant["cutmix"])
    config.data = presets.mnist(image_size=(variant["size"], variant["size"]))
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
