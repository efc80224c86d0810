"""MAE step timings, printed as one table per run.

1. Encoder forward+backward on the visible tokens only (mask 0.75) vs on all tokens: the
   asymmetric design's saving (the paper reports 3x or more for the whole pretraining).
2. Examples/s of one full MAE training step (forward, backward, AdamW) in mmjax (jit) and
   in HF transformers' PyTorch `ViTMAEForPreTraining` with the same configuration.
   "XLA-counted TFLOP/s" uses the compiled step's cost analysis; on GPU that analysis
   leaves out the cuBLAS/cuDNN custom calls (most of the work), so it is no MFU figure.

    python benchmarks/mae_step.py                      # ViT-Ti and ViT-S at 224/16, CPU-sized batch
    python benchmarks/mae_step.py --sizes base --batch 64 --dtype bfloat16   # on an accelerator

Run on an idle machine; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mmjax.masking import random_mask
from mmjax.methods import build_method, mae
from mmjax.models import MAEModel


def timeit(fn, repeats: int) -> float:
    """Median seconds of `fn()` after one warm-up call (which compiles)."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def method_for(size: str, image: int, patch: int, dtype: str):
    config = mae.default_config()
    config.model.update(size=size, image_size=image, patch_size=patch, dtype=dtype)
    config.mae.norm_pix_loss = True
    return config, build_method(config)


def encoder_times(method, batch: int, repeats: int) -> tuple[float, float]:
    cfg = method.model_config
    images = jax.random.normal(jax.random.key(0), (batch, *cfg.image_size, cfg.channels))
    params = method.init(jax.random.key(1), {"image": images})
    mask = random_mask(jax.random.key(2), batch, cfg.num_patches, method.mask_ratio)

    def encoder_loss(p, ids_keep):
        tokens = method.model.apply({"params": p}, images, ids_keep, method=MAEModel.encode)
        return jnp.mean(jnp.square(tokens.astype(jnp.float32)))

    sparse = jax.jit(jax.grad(lambda p: encoder_loss(p, mask.ids_keep)))
    dense = jax.jit(jax.grad(lambda p: encoder_loss(p, None)))
    return timeit(lambda: sparse(params), repeats), timeit(lambda: dense(params), repeats)


def mmjax_step_time(method, batch: int, repeats: int) -> tuple[float, float]:
    """Seconds per full training step and the compiled step's FLOPs (XLA cost analysis)."""
    cfg = method.model_config
    data = {"image": jax.random.normal(jax.random.key(0), (batch, *cfg.image_size, cfg.channels))}
    params = method.init(jax.random.key(1), data)
    opt = optax.adamw(1e-4, b1=0.9, b2=0.95, weight_decay=0.05)
    state = {"params": params, "opt": opt.init(params), "step": jnp.zeros((), jnp.int32)}

    @jax.jit
    def step(state):
        key = jax.random.fold_in(jax.random.key(3), state["step"])
        grads = jax.grad(lambda p: method.loss(p, data, key)[0])(state["params"])
        updates, opt_state = opt.update(grads, state["opt"], state["params"])
        return {
            "params": optax.apply_updates(state["params"], updates),
            "opt": opt_state,
            "step": state["step"] + 1,
        }

    cost = step.lower(state).compile().cost_analysis()
    flops = float((cost[0] if isinstance(cost, list) else cost).get("flops", 0.0))
    holder = [state]

    def run():
        holder[0] = step(holder[0])
        return holder[0]["step"]

    return timeit(run, repeats), flops


def hf_config(method):
    """HF `ViTMAEConfig` with the same shapes as an mmjax MAE method."""
    import transformers

    cfg, dec = method.model_config, method.decoder_config
    return transformers.ViTMAEConfig(
        image_size=cfg.image_size[0],
        patch_size=cfg.patch_size[0],
        num_channels=cfg.channels,
        hidden_size=cfg.width,
        num_hidden_layers=cfg.depth,
        num_attention_heads=cfg.heads,
        intermediate_size=cfg.mlp_dim,
        decoder_hidden_size=dec.width,
        decoder_num_hidden_layers=dec.depth,
        decoder_num_attention_heads=dec.heads,
        decoder_intermediate_size=dec.mlp_dim,
        mask_ratio=method.mask_ratio,
        norm_pix_loss=method.norm_pix_loss,
        layer_norm_eps=cfg.layer_norm_eps,
    )


def hf_step_timing(
    config, batch: int, steps: int, device: str, bf16: bool = True, compiled: bool = False
) -> tuple[float, float, float, str]:
    """HF `ViTMAEForPreTraining` training step (AdamW; bf16 autocast when `bf16`).

    Returns `(seconds per step, warm-up seconds, last loss, attention impl)`: two warm-up
    steps (which compile under `torch.compile`), then `steps` steps queued and synchronized
    once. AdamW is the fused CUDA kernel on a GPU.
    """
    import torch
    import transformers

    model = transformers.ViTMAEForPreTraining(config).train().to(device)
    cuda = device.startswith("cuda")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05, fused=cuda)
    forward = torch.compile(model) if compiled else model
    images = torch.randn(batch, config.num_channels, config.image_size, config.image_size, device=device)
    autocast = torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16)

    def run():
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = forward(pixel_values=images).loss
        loss.backward()
        opt.step()
        return loss

    def sync():
        if cuda:
            torch.cuda.synchronize()

    start = time.perf_counter()
    for _ in range(2):
        run()
    sync()
    warmup_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        loss = run()
    sync()
    seconds = (time.perf_counter() - start) / steps
    return seconds, warmup_s, float(loss.detach()), getattr(model.config, "_attn_implementation", "?")


def hf_step_time(method, batch: int, repeats: int, threads: int, device: str, dtype: str) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return hf_step_timing(hf_config(method), batch, repeats, device, bf16=dtype == "bfloat16")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="tiny,small")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--patch-size", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--torch-threads", type=int, default=2)
    parser.add_argument("--torch-device", default="cpu", help="cpu or cuda (bf16 autocast when --dtype bfloat16)")
    parser.add_argument("--skip-hf", action="store_true")
    args = parser.parse_args()

    device = jax.devices()[0]
    print(f"# MAE step timings: {device.platform} ({device.device_kind}), {platform.processor() or platform.machine()}")
    print(f"# image {args.image_size}, patch {args.patch_size}, batch {args.batch}, mask 0.75, dtype {args.dtype}")
    print(
        "| size | encoder visible (s) | encoder all (s) | speed-up | mmjax step (ex/s) | XLA-counted TFLOP/s "
        "| HF torch step (ex/s) | mmjax / HF |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for size in args.sizes.split(","):
        _, method = method_for(size, args.image_size, args.patch_size, args.dtype)
        sparse, dense = encoder_times(method, args.batch, args.repeats)
        seconds, flops = mmjax_step_time(method, args.batch, args.repeats)
        ours = args.batch / seconds
        hf_time = None
        if not args.skip_hf:
            hf_time = hf_step_time(method, args.batch, args.repeats, args.torch_threads, args.torch_device, args.dtype)
        hf = f"{args.batch / hf_time:.1f}" if hf_time else "n/a"
        ratio = f"{ours * hf_time / args.batch:.2f}x" if hf_time else "n/a"
        print(
            f"| {size} | {sparse:.4f} | {dense:.4f} | {dense / sparse:.2f}x | {ours:.1f} "
            f"| {flops / seconds / 1e12:.3f} "
            f"| {hf} | {ratio} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
