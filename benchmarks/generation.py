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

from mmjax.data.sources import make_source
from mmjax.data.transforms import denormalize_images, normalize_images
from mmjax.evaluate.generation import conditioning_accuracy, frechet_distance
from mmjax.train import load_trained


def split_arrays(data_config, split):
    source = make_source(data_config, split)
    records = [source[i] for i in range(len(source))]
    return np.stack([r["image"] for r in records]), np.array([int(r["label"]) for r in records])


def train_classifier(images, labels, seed):
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=600, random_state=seed)
    clf.fit(images.reshape(len(images), -1) / 255.0, labels)
    return clf


def hidden_features(clf, images):
    """ReLU activations of the classifier's hidden layer, `[B, 64]`."""
    x = images.reshape(len(images), -1) / 255.0
    return np.maximum(0.0, x @ clf.coefs_[0] + clf.intercepts_[0])


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
    data = config.data
    train_images, train_labels = split_arrays(data, "train")
    test_images, test_labels = split_arrays(data, "test")
    clf = train_classifier(train_images, train_labels, args.seed)
    real_features = hidden_features(clf, train_images)

    def row(name, images, requested, speed="-"):
        acc = conditioning_accuracy(clf.predict(images.reshape(len(images), -1) / 255.0), requested)
        fd = frechet_distance(real_features, hidden_features(clf, images))
        return f"| {name} | {len(images)} | {100 * acc:.1f}% | {fd:.2f} | {speed} |"

    rows = [row("real test digits", test_images, test_labels)]
    tokens = jax.jit(method.tokenizer.tokenize)(params["tokenizer"], normalize_images(test_images, data.mean, data.std))
    recon = denormalize_images(jax.jit(method.decode_images)(params, tokens), data.mean, data.std)
    rows.append(row("tokenizer reconstructions", recon, test_labels))

    classes = method.options.num_classes
    labels = np.repeat(np.arange(classes), args.per_class).astype(np.int32)
    decode_images = jax.jit(method.decode_images)
    guidance = method.sample_options.guidance if args.guidance is None else args.guidance
    schedule = args.guidance_schedule or method.sample_options.guidance_schedule
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
    test_accuracy = clf.score(test_images.reshape(len(test_images), -1) / 255.0, test_labels)
    print(f"classifier: MLP(64) on raw pixels, real test accuracy {100 * test_accuracy:.1f}%")
    print("| samples | n | conditioning accuracy (chance 10%) | Frechet distance to real train | samples/s |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
