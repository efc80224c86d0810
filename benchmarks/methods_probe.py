"""Every vision method, same bundled data, same number of steps: one table of probes, loss and time.

Each method trains from its bundled MNIST experiment file (`experiments/<method>_mnist.py`)
for `--steps` updates through `mmjax.train.train`. Then the encoder's features of
unmasked images (`method.features(..., pool="mean")`) are probed on the 1,000 held-out
digits with a linear probe and a cosine kNN (k=20, weighted), next to the same
architecture at its random initialization.

Methods that need another run first get it here: BEiT trains on the codes of a
tokenizer trained first (`experiments/vq_mnist.py`, same steps); the distillation
student's teacher is the MAE encoder trained in the same table. Their time is listed
on its own row and not added to the student's.

    python benchmarks/methods_probe.py                       # all methods, 1500 steps
    python benchmarks/methods_probe.py --methods mae,simmim --steps 300
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import jax

from mmjax.config import load_experiment
from mmjax.data.kinds import data_kind
from mmjax.data.pipeline import eval_dataset
from mmjax.data.transforms import normalize_images
from mmjax.evaluate import extract_features, knn_accuracy, linear_probe
from mmjax.train import train

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("mae", "simmim", "beit", "distill", "jepa")
# method -> (experiment that must run first, config field that receives its workdir)
NEEDS = {"beit": ("vq_mnist", "beit.tokenizer_workdir"), "distill": ("mae_mnist", "distill.teacher_workdir")}


def experiment(name: str, steps: int):
    config = load_experiment(ROOT / "experiments" / f"{name}.py")
    config.train.update(steps=steps, tensorboard=False, checkpoint_every=steps)
    config.eval.protocols = ()
    return config


def run(name: str, steps: int, workdir: Path, seed: int | None = None, **overrides: str) -> dict:
    """Train `experiments/<name>.py` from scratch (with `config.seed=seed` when given); returns the
    config, result and wall seconds."""
    config = experiment(name, steps)
    if seed is not None:
        config.seed = seed
    for field, value in overrides.items():
        section, key = field.split(".")
        config[section][key] = value
    shutil.rmtree(workdir, ignore_errors=True)
    start = time.perf_counter()
    result = train(config, str(workdir))
    return {"config": config, "result": result, "seconds": time.perf_counter() - start}


def probes(config, method, params) -> dict[str, float]:
    data = config.data

    @jax.jit
    def features(images):
        return method.features(params, normalize_images(images, data.mean, data.std), pool="mean")

    train_x, train_y = extract_features(features, eval_dataset(data, "train", 250))
    test_x, test_y = extract_features(features, eval_dataset(data, "test", 250))
    return {
        "linear": linear_probe(train_x, train_y, test_x, test_y, steps=500),
        "knn": knn_accuracy(train_x, train_y, test_x, test_y, k=20),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--workdir", default="runs/methods_probe")
    args = parser.parse_args()
    root = Path(args.workdir)
    methods = args.methods.split(",")
    runs: dict[str, dict] = {}
    rows = []
    for name in methods:
        overrides = {}
        if name in NEEDS:
            first, field = NEEDS[name]
            if first not in runs:
                runs[first] = run(first, args.steps, root / first)
                rows.append({"method": f"({first}, needed by {name})", "seconds": runs[first]["seconds"]})
            overrides[field] = str(root / first)
        key = f"{name}_mnist"
        if key not in runs:
            runs[key] = run(key, args.steps, root / key, **overrides)
        done = runs[key]
        config, result = done["config"], done["result"]
        method = result.method
        example = data_kind(config.data).example_batch(config.data)
        random_params = method.init(jax.random.key(config.seed + 12345), example)
        trained = probes(config, method, result.state.params)
        random = probes(config, method, random_params)
        rows.append(
            {
                "method": name,
                "linear": trained["linear"],
                "knn": trained["knn"],
                "random_linear": random["linear"],
                "random_knn": random["knn"],
                "loss": result.history[-1]["loss"],
                "seconds": done["seconds"],
            }
        )
    platform = jax.devices()[0].platform
    print(f"\n{args.steps} steps each on the bundled MNIST subset (4,000 train / 1,000 test), {platform}")
    print("| method | linear probe | kNN (k=20) | random encoder: linear / kNN | final loss | train time |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        if "linear" not in row:
            print(f"| {row['method']} | | | | | {row['seconds']:.0f} s |")
            continue
        print(
            f"| {row['method']} | {100 * row['linear']:.1f}% | {100 * row['knn']:.1f}% | "
            f"{100 * row['random_linear']:.1f}% / {100 * row['random_knn']:.1f}% | {row['loss']:.4f} | "
            f"{row['seconds']:.0f} s |"
        )
    losers = [row["method"] for row in rows if "linear" in row and row["linear"] <= row["random_linear"]]
    print("every method beats its random encoder" if not losers else f"NOT above the random encoder: {losers}")


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    main()
