"""An image tokenizer on the bundled MNIST subset (2 CPU cores, a few minutes).

Digits are resized to 32 x 32 and cut into 4 px patches, so each image becomes an 8 x 8
grid of code ids: the grid of `experiments/beit_mnist.py`'s ViT, which uses these ids as
targets. Variants: `quantizer=vq|fsq`, `codebook=ema|straight_through` (vq), `steps=N`.

  python -m mmjax train --config experiments/vq_mnist.py --workdir /tmp/vq_mnist
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import vq
from mmjax.train.defaults import training_sections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, quantizer="vq", codebook="ema", steps=1000)
    config = training_sections(vq.default_config())
    config.model.update(size=None, image_size=32, patch_size=4, channels=1, width=64, depth=2, heads=4, mlp_dim=256)
    config.tokenizer.update(
        quantizer=variant["quantizer"],
        codebook=variant["codebook"],
        vocab_size=256,
        code_dim=16,
        levels=(8, 5, 5),  # fsq: 200 codes
        decoder_depth=2,
    )
    config.data = presets.mnist(image_size=(32, 32))
    config.train.update(
        steps=variant["steps"], batch_size=128, lr=1e-3, warmup_steps=50, log_every=100, checkpoint_every=500
    )
    return config
