"""MAR's diffusion head and sampler alone, on a 2-D conditional Gaussian mixture: where sampling goes wrong.

A `DiffusionHead` (MAR's MLP with AdaLN) learns 4 components (centers (+-2, +-2), std 0.3), each
asked for by a one-hot condition, with MAR's loss (`diffusion_loss`, cosine schedule of 1000
steps, 2 draws per point); then `ddpm_sample` (MAR's ancestral sampler, no clipping) draws 250
points per component. The table gives, after each training length: the share of samples that
left the data (|x| > 10), the share of the others on the asked component, and the error of the
first step's estimate of x0. The cosine schedule ends at alpha_bar = 2.4e-9 (the reference's too),
so the first step divides the noise prediction's error by sqrt(2.4e-9): an error of 0.01 there
puts x0 hundreds of units away, and the steps after it do not come back.

    python benchmarks/mar_parts.py --steps 1000,3000 --width 64 --depth 2
"""

from __future__ import annotations

import argparse
import os
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mmjax.models.diffusion_head import DiffusionHead
from mmjax.ops.diffusion import ddpm_sample, diffusion_loss, noise_schedule, respace

CENTERS = np.array([[2.0, 2.0], [-2.0, 2.0], [-2.0, -2.0], [2.0, -2.0]], np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="1000,3000", help="training lengths at which to sample")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--sampling-steps", type=int, default=100)
    args = parser.parse_args()
    lengths = sorted(int(s) for s in args.steps.split(","))
    train_schedule = noise_schedule("cosine", 1000)
    schedule = respace(train_schedule, args.sampling_steps)
    head = DiffusionHead(dim=2, width=args.width, depth=args.depth)
    params = head.init(jax.random.key(0), jnp.zeros((1, 2)), jnp.zeros((1,), jnp.int32), jnp.zeros((1, 4)))
    optimizer = optax.adam(2e-3)
    opt_state = optimizer.init(params)

    @jax.jit
    def update(params, opt_state, key):
        draw, noise, loss_key = jax.random.split(key, 3)
        which = jax.random.randint(draw, (512,), 0, 4)
        x0 = jnp.asarray(CENTERS)[which] + 0.3 * jax.random.normal(noise, (512, 2))

        def loss(p):
            return diffusion_loss(
                partial(head.apply, p), train_schedule, x0, jax.nn.one_hot(which, 4), loss_key, 2
            ).mean()

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, value

    asked = np.repeat(np.arange(4), 250)
    cond = jax.nn.one_hot(jnp.asarray(asked), 4)
    top = int(schedule.timesteps[-1])
    abar_top = float(train_schedule.alphas_cumprod[top])
    rows, done = [], 0
    for length in lengths:
        for step in range(done, length):
            params, opt_state, _ = update(params, opt_state, jax.random.key(step + 1))
        done = length
        samples = np.asarray(ddpm_sample(partial(head.apply, params), schedule, cond, jax.random.key(7), dim=2))
        away = np.abs(samples).max(1) > 10
        nearest = np.argmin(((samples[:, None] - CENTERS[None]) ** 2).sum(-1), 1)
        on_asked = (nearest[~away] == asked[~away]).mean() if (~away).any() else float("nan")
        x0 = CENTERS[asked] + 0.3 * np.asarray(jax.random.normal(jax.random.key(3), (1000, 2)))
        noise = np.asarray(jax.random.normal(jax.random.key(4), (1000, 2)))
        x_top = np.sqrt(abar_top) * x0 + np.sqrt(1 - abar_top) * noise
        eps = np.asarray(head.apply(params, jnp.asarray(x_top, jnp.float32), jnp.full((1000,), top), cond))
        eps_error = float(np.sqrt(np.mean((eps - noise) ** 2)))
        rows.append(
            f"| {length} | {100 * away.mean():.1f}% | {100 * on_asked:.1f}% | {eps_error:.4f} | "
            f"{eps_error / np.sqrt(abar_top):.0f} |"
        )
        print(rows[-1], flush=True)
    print(
        f"\nhead width {args.width}, depth {args.depth}; {args.sampling_steps} sampling steps; first step t={top}, "
        f"alpha_bar {abar_top:.2g}"
    )
    print(
        "| training steps | samples off the data | of the rest, on the asked component | eps error at the first "
        "step (rms) | x0 error it makes |"
    )
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    main()
