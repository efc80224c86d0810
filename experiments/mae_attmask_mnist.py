"""AttMask's attention-guided mask on MAE, bundled MNIST: `experiments/mae_mnist.py` with `mask.kind=attention_guided`.

AttMask (Kakogeorgiou et al. 2022) hides the patches that a teacher's [CLS] token attends to
most: the last encoder block's [CLS] attention row, averaged over heads, on the whole image
(`mmjax.masking.attention_guided_mask`, `mask.attention_guided.mode=high`; `low` and `hint`
are the paper's other two). The paper's teacher is iBOT's EMA network; mmjax has no iBOT, so
this is the mask on MAE, whose EMA copy (`teacher.*`, HPM's decay 0.999 -> 0.9999) gives the
attention. The same 37 of 49 patches are hidden as in MAE, all by attention here. Everything
else is `mae_mnist.py`'s recipe; the step costs one more encoder pass of the whole image.

Measured (`python benchmarks/variants_probe.py --steps 500 --experiments mae_mnist,mae_attmask_mnist`, one
seed, 2 loaded CPU cores): linear probe 85.7%, kNN (k=20) 69.1%, final loss 0.1518; MAE at equal
steps 80.7% / 62.0% / 0.3172; the random encoder 79.3% / 41.6%.

Variants (`--config experiments/mae_attmask_mnist.py:steps=200,runlocal`):
  steps     training steps
  runlocal  shrink further for a smoke test (tiny model, 20 steps)
"""

from pathlib import Path

import ml_collections

from mmjax.config import load_experiment


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = load_experiment(Path(__file__).with_name("mae_mnist.py"), arg)
    config.mask.kind = "attention_guided"
    return config
