"""HPM on the bundled MNIST: `experiments/mae_mnist.py` with `mask.kind=hard_patch`.

Hard Patches Mining (Wang et al. 2023) teaches MAE to predict where it will fail and then to
hide exactly those patches. The decoder gets a second branch of the same depth that predicts
each patch's reconstruction loss, trained with the paper's relative objective (pairwise order
of the hidden patches' losses, `hpm.relative`) next to the reconstruction loss (`hpm.weight`
1). An EMA copy of the model (decay 0.999 -> 0.9999 over the first eighth of training, the
paper's 100 of 800 epochs) predicts the loss of every patch of the whole image; the mask
hides the highest-predicted patches for a share of the hidden count that grows linearly from
0 to 0.5 over `train.steps` (`mask.hard_patch.alpha_start` / `alpha_end`), the rest at random.
Everything else is `mae_mnist.py`'s recipe; the step costs a teacher pass of the whole image
and the second decoder branch.

Measured (`python benchmarks/variants_probe.py --steps 500 --experiments mae_mnist,mae_hpm_mnist`,
one seed, 2 loaded CPU cores): linear probe 59.7%, kNN (k=20) 36.2%, final loss 0.6687
(reconstruction + ranking); MAE at equal steps 80.7% / 62.0% / 0.3172; the random encoder
79.3% / 41.6%. Below the random encoder at this length: the ranking objective also trains the
encoder (as in the reference) and the masks harden within these 500 steps. Not tuned.

Variants (`--config experiments/mae_hpm_mnist.py:steps=200,runlocal`):
  steps     training steps
  runlocal  shrink further for a smoke test (tiny model, 20 steps)
"""

from pathlib import Path

import ml_collections

from mmjax.config import load_experiment


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = load_experiment(Path(__file__).with_name("mae_mnist.py"), arg)
    config.mask.kind = "hard_patch"
    return config
