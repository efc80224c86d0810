"""MaskGIT sample quality on the bundled digits: conditioning accuracy and a Frechet distance.

A small MLP classifier (scikit-learn) is trained on real digits in this run. Generated
samples are labeled by it: conditioning accuracy is the fraction classified as the class
they were asked for (chance 10%). The Frechet distance compares real and generated
samples in the classifier's hidden-layer feature space. Rows: real test digits (the
floor), the tokenizer's reconstructions of them (the ceiling a MaskGIT on these codes can
reach), and MaskGIT at 4, 8 and 16 decoding steps with samples/s (after compilation).

  python -m mmjax train --config experiments/maskgit_digits.py:stage=tokenizer --workdir /tmp/digits_vq
  python -m mmjax train --config experiments/maskgit_digits.py --workdir /tmp/digits_maskgit \
      --config.maskgit.tokenizer_workdir=/tmp/digits_vq
  python benchmarks/generation.py --workdir /tmp/digits_maskgit
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from mmjax.data.transforms import denormalize_images
from mmjax.evaluate.generation import ACCURACY, FRECHET, PixelClassifier, reconstruct_images, split_images
from mmjax.train import load_trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True, help="a trained MaskGIT workdir (experiments/maskgit_digits.py)")
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--steps", default="4,8,16")
    parser.add_argument("--guidance", type=float, default=None, help="default: the config's sample.guidance")
    parser.add_argument("--guidance-schedule", default=None, help="constant|linear|cosine; default: the config's")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    config, method, params = load_trained(args.workdir)
    params = jax.device_put(jax.device_get(params))
    data = config.data
    test_images, test_labels = split_images(data, "test")
    classifier = PixelClassifier.fit(*split_images(data, "train"), seed=args.seed)

    def row(name, images, requested, speed="-"):
        scores = classifier.judge(images, requested)
        return f"| {name} | {len(images)} | {100 * scores[ACCURACY]:.1f}% | {scores[FRECHET]:.2f} | {speed} |"

    rows = [row("real test digits", test_images, test_labels)]
    recon = reconstruct_images(method, params, test_images, data, len(test_images))
    rows.append(row("tokenizer reconstructions", recon, test_labels))

    labels = np.repeat(np.arange(method.options.num_classes), args.per_class).astype(np.int32)
    guidance = method.sample_options.guidance if args.guidance is None else args.guidance
    schedule = args.guidance_schedule or method.sample_options.guidance_schedule
    decode_images = jax.jit(method.decode_images)
    for steps in (int(s) for s in args.steps.split(",")):
        sample = method.sampler(num_steps=steps, guidance=guidance, guidance_schedule=schedule)
        key = jax.random.key(args.seed + steps)
        jax.block_until_ready(sample(params, key, labels))  # compile
        start = time.perf_counter()
        codes = jax.block_until_ready(sample(params, key, labels))
        seconds = time.perf_counter() - start
        images = denormalize_images(decode_images(params, codes), data.mean, data.std)
        rows.append(row(f"MaskGIT, {steps} steps", images, labels, f"{len(labels) / seconds:.0f}"))

    print(f"\nMaskGIT on {data.source}: {args.workdir} (guidance {guidance}, {schedule})")
    print("classifier: MLP(64) on raw pixels of the real train split; its test accuracy is the first row")
    print("| samples | n | conditioning accuracy (chance 10%) | Frechet distance to real train | samples/s |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
