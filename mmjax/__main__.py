"""`python -m mmjax demo`: a short MAE pretraining run on scikit-learn's bundled 8x8 digits.

This is the interim main job until the experiment-file trainer (`python -m mmjax train`)
lands; it uses only the functional API: build, init, a jitted AdamW step, evaluate.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mmjax.methods import build_method, mae
from mmjax.ops import patchify


def demo(steps: int, batch_size: int, seed: int) -> dict[str, float]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("the demo needs scikit-learn: pip install -e '.[data]'")
    digits = load_digits().images.astype(np.float32)[..., None] / 16.0  # [1797, 8, 8, 1]
    mean, std = digits.mean(), digits.std()
    digits = (digits - mean) / std
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(digits))
    train, test = digits[order[:1500]], digits[order[1500:]]

    config = mae.default_config()
    config.model.update(
        size=None, image_size=8, patch_size=2, channels=1, width=64, depth=3, heads=4, mlp_dim=128
    )
    config.decoder.update(width=64, depth=1, heads=4, mlp_dim=128)
    config.mae.update(mask_ratio=0.75, norm_pix_loss=False)
    method = build_method(config)
    params = method.init(jax.random.key(seed), {"image": jnp.asarray(train[:2])})
    schedule = optax.warmup_cosine_decay_schedule(0.0, 2e-3, steps // 10, steps)
    optimizer = optax.adamw(schedule, b1=0.9, b2=0.95, weight_decay=0.05)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, images, key):
        (loss, _), grads = jax.value_and_grad(method.loss, has_aux=True)(params, {"image": images}, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    eval_loss = jax.jit(lambda p, images, key: method.loss(p, {"image": images}, key, train=False)[0])
    eval_key = jax.random.key(seed + 1)
    test_images = jnp.asarray(test)
    print(f"MAE demo: {len(train)} train / {len(test)} test digits, {steps} steps of batch {batch_size}")
    start = time.perf_counter()
    for i in range(steps):
        idx = rng.choice(len(train), batch_size, replace=False)
        params, opt_state, loss = step(
            params, opt_state, jnp.asarray(train[idx]), jax.random.fold_in(eval_key, i)
        )
        if (i + 1) % max(1, steps // 5) == 0:
            test_loss = float(eval_loss(params, test_images, eval_key))
            print(f"  step {i + 1:5d}  train loss {float(loss):.4f}  test loss {test_loss:.4f}")
    seconds = time.perf_counter() - start
    # Baseline: predict every hidden pixel as the dataset mean (0 after normalization).
    hidden = method.make_mask(eval_key, len(test)).mask
    baseline = float(
        jnp.sum(jnp.mean(jnp.square(patchify(test_images, method.model_config.patch_size)), -1) * hidden)
        / jnp.sum(hidden)
    )
    result = {
        "test_loss": float(eval_loss(params, test_images, eval_key)),
        "mean_baseline": baseline,
        "seconds": seconds,
    }
    print(f"held-out masked MSE {result['test_loss']:.4f} vs {baseline:.4f} for the mean ({seconds:.1f}s)")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mmjax")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("demo", help="short MAE pretraining on the bundled 8x8 digits")
    run.add_argument("--steps", type=int, default=500)
    run.add_argument("--batch-size", type=int, default=128)
    run.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    demo(args.steps, args.batch_size, args.seed)


if __name__ == "__main__":
    main()
