"""Tiny video and audio configs for the tests."""

import ml_collections

from tests.helpers import load_experiment


def tiny_config(method: str, steps: int = 4) -> ml_collections.ConfigDict:
    """The bundled experiment for `method` ("videomae" / "audiomae"), shrunk for a seconds-long run."""
    name = {"videomae": "videomae_moving_digits", "audiomae": "audiomae_synth"}[method]
    config = load_experiment(name, f"steps={steps}")
    config.model.update(width=32, depth=1, heads=2, mlp_dim=64)
    config.decoder.update(width=32, depth=1, heads=2, mlp_dim=64)
    config.data.update(num_train=64, num_test=32)
    config.train.update(batch_size=16, lr=3e-3, warmup_steps=2, log_every=1, checkpoint_every=1000)
    config.train.update(tensorboard=False, async_checkpoints=False)
    config.eval.batch_size = 32
    config.eval.kind_probe.steps = 20
    return config
