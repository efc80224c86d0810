"""LocalMIM on the bundled MNIST: `experiments/mae_mnist.py` with a local decoder on a lower encoder block.

LocalMIM (Wang et al. 2023, "Masked Image Modeling with Local Multi-Scale Reconstruction") puts
the reconstruction task on several encoder blocks, lower blocks at finer scales. Here the second
of the four encoder blocks gets a light decoder of its own (a LayerNorm, 64 wide, one block)
that predicts each hidden patch's pixels normalized per 2 x 2-pixel region, while MAE's decoder
on the last block keeps the 4 x 4-pixel patch target (the coarse scale); the local loss is added
at weight 1 (`mmjax.methods.local_mim`). Everything else is `mae_mnist.py`'s recipe. Left out:
LocalMIM's coarser-than-a-patch scales (pooled tokens) and its HOG descriptor variant.

Variants (`--config experiments/mae_localmim_mnist.py:steps=200,runlocal`):
  steps     training steps
  runlocal  shrink further for a smoke test (tiny model, 20 steps)
"""

from pathlib import Path

import ml_collections

from mmjax.config import load_experiment


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = load_experiment(Path(__file__).with_name("mae_mnist.py"), arg)
    config.localmim.update(blocks=(max(1, config.model.depth // 2),), regions=(2,))
    return config
