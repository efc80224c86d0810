"""MAE with BEiT's block-wise mask on the bundled MNIST: `experiments/mae_mnist.py` with `mask.kind=blockwise`.

A variant that is only a config: MAE (He et al. 2022) hides its 75% of patches as BEiT's
random rectangles (Bao et al. 2022, `mmjax.masking.blockwise_mask`) instead of uniformly.
The block budget is MAE's hidden count (37 of the 7 x 7 = 49 tokens); the sparse encoder
needs exactly 12 visible tokens per image, so a mask whose blocks fall short of the budget
is topped up with random tokens (`mmjax.masking.fixed_count_mask`; the blocks cover 36.9
of the 37 on average, so the top-up is about 0.1 token). The smallest block is scaled to
the grid: BEiT's 16 of 196 patches is 4 of 49 here (`mask.blockwise.min_block=4`).
Everything else is `mae_mnist.py`'s recipe.

Variants (`--config experiments/mae_blockwise_mnist.py:steps=200,runlocal`):
  steps     training steps
  runlocal  shrink further for a smoke test (tiny model, 20 steps)

Measured (`python benchmarks/variants_probe.py --steps 500 --experiments
mae_mnist,mae_blockwise_mnist`, 2 loaded CPU cores): linear probe / kNN (k=20) of mean token
features on the 1,000 held-out digits, next to its base at equal steps and the random encoder:

  experiment            linear probe   kNN     random encoder (linear / kNN)   final loss
  mae_mnist (base)      80.7%          62.0%   79.3% / 41.6%                   0.3172
  mae_blockwise_mnist   68.6%          52.5%   79.3% / 41.6%                   0.3894

At 500 steps MAE is still near its "predict zeros" plateau (see `mae_mnist.py`: it leaves
it after about 800 steps at batch 128); block masks make the task harder (higher loss) and
the block-wise encoder probes below random at this length. Longer runs were not measured.
"""

from pathlib import Path

import ml_collections

from mmjax.config import load_experiment


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = load_experiment(Path(__file__).with_name("mae_mnist.py"), arg)
    config.mask.kind = "blockwise"
    config.mask.blockwise.min_block = 4
    return config
