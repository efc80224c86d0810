"""Class-conditional sample quality on the bundled digits, one table for every generator: MaskGIT
(discrete codes), GIVT causal, GIVT masked and MAR (continuous latents).

A small MLP classifier (scikit-learn) is trained on real digits in this run. Generated
samples are labeled by it: conditioning accuracy is the fraction classified as the class
they were asked for (chance 10%). The Frechet distance compares real and generated
samples in the classifier's hidden-layer feature space. Rows: real test digits (the
floor), each tokenizer's reconstructions of them (the ceiling a generator over its codes or
latents can reach), and each generator at the given decoding step counts (a causal GIVT
always takes one step per token) with samples/s (after compilation, decoding only).

  python -m mmjax train --config experiments/maskgit_digits.py:stage=tokenizer --workdir /tmp/digits_vq
  python -m mmjax train --config experiments/maskgit_digits.py --workdir /tmp/digits_maskgit \
      --config.maskgit.tokenizer_workdir=/tmp/digits_vq
  python -m mmjax train --config experiments/continuous_digits.py:stage=vae --workdir /tmp/digits_vae
  python -m mmjax train --config experiments/continuous_digits.py:stage=givt --workdir /tmp/digits_givt
  python -m mmjax train --config experiments/continuous_digits.py:stage=givt,style=masked \
      --workdir /tmp/digits_givt_masked
  python -m mmjax train --config experiments/continuous_digits.py:stage=mar --workdir /tmp/digits_mar
  python benchmarks/generation.py --workdir /tmp/digits_maskgit --workdir /tmp/digits_givt \
      --workdir /tmp/digits_givt_masked --workdir /tmp/digits_mar
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from mmjax.data.transforms import denormalize_images
from mmjax.evaluate.generation import ACCURACY, FRECHET, PixelClassifier, reconstruct_images, split_images
from mmjax.train import load_trained


def generator_name(config, method) -> str:
    """`MaskGIT`, `GIVT causal (gmm)`, `MAR (diffusion)` ...: the row label of a run."""
    if config.method == "maskgit":
        return "MaskGIT"
    options = method.options
    style = f" {options.style}" if config.method == "givt" else ""
    return f"{config.method.upper()}{style} ({options.head} head)"


def step_counts(config, method, requested: list[int]) -> list[int]:
    """The decoding step counts of a run: `requested`, or the one fixed count of a causal model."""
    if config.method != "maskgit" and method.options.style == "causal":
        return [method.num_tokens // method.model_options.block_size]
    return requested


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", action="append", required=True, help="a trained generator workdir (repeat)")
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--steps", default="4,8,16")
    parser.add_argument("--guidance", type=float, default=None, help="default: each config's sample.guidance")
    parser.add_argument("--guidance-schedule", default=None, help="constant|linear|cosine; default: the config's")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    requested = [int(s) for s in args.steps.split(",")]

    runs = [load_trained(workdir) for workdir in args.workdir]
    data = runs[0][0].data
    test_images, test_labels = split_images(data, "test")
    classifier = PixelClassifier.fit(*split_images(data, "train"), seed=args.seed)

    def row(name, images, requested_labels, speed="-"):
        scores = classifier.judge(images, requested_labels)
        return f"| {name} | {len(images)} | {100 * scores[ACCURACY]:.1f}% | {scores[FRECHET]:.2f} | {speed} |"

    rows = [row("real test digits", test_images, test_labels)]
    seen_tokenizers = set()
    for (config, method, params), workdir in zip(runs, args.workdir, strict=True):
        params = jax.device_put(jax.device_get(params))
        tokenizer = config[config.method].tokenizer_workdir
        if tokenizer not in seen_tokenizers:
            seen_tokenizers.add(tokenizer)
            recon = reconstruct_images(method, params, test_images, data, len(test_images))
            rows.append(row(f"{config.tokenizer_config.method} reconstructions ({tokenizer})", recon, test_labels))
        labels = np.repeat(np.arange(method.options.num_classes), args.per_class).astype(np.int32)
        guidance = method.sample_options.guidance if args.guidance is None else args.guidance
        schedule = args.guidance_schedule or method.sample_options.guidance_schedule
        decode_images = jax.jit(method.decode_images)
        name = generator_name(config, method)
        for steps in step_counts(config, method, requested):
            sample = method.sampler(num_steps=steps, guidance=guidance, guidance_schedule=schedule)
            key = jax.random.key(args.seed + steps)
            jax.block_until_ready(sample(params, key, labels))  # compile
            start = time.perf_counter()
            out = jax.block_until_ready(sample(params, key, labels))
            seconds = time.perf_counter() - start
            images = denormalize_images(decode_images(params, out), data.mean, data.std)
            label = f"{name}, {steps} steps, guidance {guidance:g} ({workdir})"
            rows.append(row(label, images, labels, f"{len(labels) / seconds:.0f}"))

    print(f"\nclass-conditional generation on {data.source}")
    print("classifier: MLP(64) on raw pixels of the real train split; its test accuracy is the first row")
    print("| samples | n | conditioning accuracy (chance 10%) | Frechet distance to real train | samples/s |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
