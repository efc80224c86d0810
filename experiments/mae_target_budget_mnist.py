"""MAE with 4M's target budget on the bundled MNIST: `experiments/mae_mnist.py` with `budget.target_ratio=0.5`.

4M (Mizrahi et al. 2023) draws, per example, an input budget and a separate, smaller target
budget (`mmjax.masking.multimodal_budget_masks`): the model does not predict every token it
does not see. On MAE's one modality that is MAE's 12 visible patches of 49 as inputs and 18
of the 37 hidden ones (`round(0.5 * 37)`) as targets, both uniform per image; the decoder's
blocks run on the cls token, the visible and the target tokens only (31 of 50), and the loss
counts the targets. Everything else is `mae_mnist.py`'s recipe.

Measured (`python benchmarks/variants_probe.py --steps 500 --experiments mae_mnist,mae_target_budget_mnist`, one
seed, 2 loaded CPU cores): linear probe 73.0%, kNN (k=20) 52.5%, final loss 0.3266; MAE at equal
steps 80.7% / 62.0% / 0.3172; the random encoder 79.3% / 41.6%.

Variants (`--config experiments/mae_target_budget_mnist.py:steps=200,runlocal`):
  steps     training steps
  runlocal  shrink further for a smoke test (tiny model, 20 steps)
"""

from pathlib import Path

import ml_collections

from mmjax.config import load_experiment


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = load_experiment(Path(__file__).with_name("mae_mnist.py"), arg)
    config.budget.target_ratio = 0.5
    return config
