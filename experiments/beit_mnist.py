"""BEiT on the bundled MNIST subset (2 CPU cores, a few minutes), with targets from a tokenizer
trained by `experiments/vq_mnist.py`. Two commands:

  python -m mmjax train --config experiments/vq_mnist.py --workdir /tmp/vq_mnist
  python -m mmjax train --config experiments/beit_mnist.py:tokenizer=/tmp/vq_mnist --workdir /tmp/beit_mnist

Digits are resized to 32 x 32 and cut into 4 px patches: an 8 x 8 grid, the tokenizer's code
grid. BEiT's budget of 75 of 196 patches in blocks of at least 16 becomes 25 of 64 patches in
blocks of at least 5. Variants: `tokenizer=DIR`, `steps=N`.

Measured (`benchmarks/methods_probe.py --methods beit,simmim --steps 500`, tokenizer and
BEiT 500 steps each): loss 2.71 (ln 256 = 5.55 at chance); linear probe of mean token
features 89.9% against 84.9% for the same encoder at random initialization.
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import beit
from mmjax.train.defaults import training_sections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, tokenizer="/tmp/vq_mnist", steps=1500)
    config = training_sections(beit.default_config())
    config.model.update(size=None, image_size=32, patch_size=4, channels=1, width=128, depth=4, heads=4, mlp_dim=512)
    config.beit.update(tokenizer_workdir=variant["tokenizer"])
    config.data = presets.mnist(image_size=(32, 32))
    config.train.update(
        steps=variant["steps"], batch_size=128, lr=1e-3, warmup_steps=100, log_every=100, checkpoint_every=500
    )
    return config
