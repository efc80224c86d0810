"""MaskDistill / MaskAlign on the bundled MNIST subset, distilling a finished MAE run (2 CPU cores).

Two commands: train the teacher, then the student with the teacher's workdir.

  python -m mmjax train --config experiments/mae_mnist.py --workdir /tmp/mae_mnist
  python -m mmjax train --config experiments/distill_mnist.py --workdir /tmp/distill_mnist \\
      --config.distill.teacher_workdir=/tmp/mae_mnist

The student matches the teacher's 28 px / patch 4 grid (7 x 7 tokens) and has the same
size (width 128, depth 4). MaskDistill hides 40% of the tokens at random and regresses
the teacher's LayerNorm-ed tokens there with smooth L1; `mode=maskalign` encodes only
the visible 60% and aligns them with the teacher's tokens at the same positions. The run
ends with a linear probe of the student's mean token on the 1,000 held-out digits.

Variants (`--config experiments/distill_mnist.py:mode=maskalign,steps=500`):
  mode      maskdistill | maskalign
  loss      smooth_l1 | cosine
  steps     training steps
  teacher   the teacher's workdir (same as --config.distill.teacher_workdir)
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import distill
from mmjax.train.defaults import training_sections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, mode="maskdistill", loss="smooth_l1", steps=1500, teacher="")
    config = training_sections(distill.default_config())
    config.model.update(size=None, image_size=28, patch_size=4, channels=1, width=128, depth=4, heads=4, mlp_dim=512)
    config.distill.update(
        teacher_workdir=variant["teacher"],
        mode=variant["mode"],
        loss=variant["loss"],
        mask_ratio=0.4,
        masking="random",
        target_norm="layernorm",
    )
    config.data = presets.mnist()
    config.train.update(
        steps=variant["steps"], batch_size=128, lr=1e-3, warmup_steps=100, log_every=100, checkpoint_every=500
    )
    return config
