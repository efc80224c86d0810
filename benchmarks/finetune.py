"""Fine-tuning every vision method's encoder on the bundled MNIST subset, against the same ViT from scratch.

Each method pretrains from its experiment file (`experiments/<method>_mnist.py`, `--steps`
updates; BEiT's tokenizer and the distillation teacher first, as in `methods_probe.py`). Then
each encoder is fine-tuned with `experiments/finetune_mnist.py` for `--ft-steps` updates at
each of `--seeds` seeds (the seed draws the head and the batch order), and scored top-1 on the
1,000 held-out digits. Every fine-tune pools the mean patch token (`finetune.pool="mean"`: I-JEPA
has no cls token, and MAE's own fine-tuning pools globally). "Scratch" is the same ViT after a
single MAE step at each image size the methods use (28 x 28 for MAE, distillation and I-JEPA;
32 x 32 for SimMIM and BEiT), fine-tuned the same way. Next to each, the linear probe of the
pretrained encoder's frozen features (mean pool, as `methods_probe.py`).

    python benchmarks/finetune.py                                  # 1000 + 300 steps, 2 seeds
    python benchmarks/finetune.py --methods mae,jepa --steps 200 --ft-steps 50 --seeds 1
    python benchmarks/finetune.py --reuse --drop-path 0 --mixup 0.8 --cutmix 1.0   # the same encoders again
    python benchmarks/finetune.py --reuse --methods mae --no-scratch --drop-path 0.1
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import numpy as np
from methods_probe import METHODS, NEEDS, experiment, probes
from methods_probe import run as pretrain

from mmjax.data import presets
from mmjax.evaluate.images import classification_results
from mmjax.train import load_trained, train

# The scratch encoders: the MAE ViT at the image sizes the methods train on.
SCRATCH = {"scratch 28 x 28": 28, "scratch 32 x 32": 32}


def scratch(size: int, workdir: Path) -> None:
    """One MAE step (no warmup) of `mae_mnist.py` at `size` x `size`: a random encoder with a checkpoint."""
    config = experiment("mae_mnist", 1)
    config.model.image_size = size
    config.data = presets.mnist(image_size=(size, size))
    config.train.warmup_steps = 0
    shutil.rmtree(workdir, ignore_errors=True)
    train(config, str(workdir))


def finetune(pretrained: Path, data, steps: int, seed: int, workdir: Path, **recipe: float) -> tuple[float, float]:
    """Fine-tune the encoder of `pretrained` on `data` (its images) with `finetune_mnist.py`'s recipe
    changed by `recipe` (`drop_path`, `mixup`, `cutmix`); returns (test top-1, seconds)."""
    config = experiment("finetune_mnist", steps)
    config.finetune.update(from_workdir=str(pretrained), pool="mean", **recipe)
    config.data = data
    config.seed = seed
    shutil.rmtree(workdir, ignore_errors=True)
    start = time.perf_counter()
    result = train(config, str(workdir))
    seconds = time.perf_counter() - start
    (accuracy, _) = classification_results(config, result.method, result.state.params)
    return accuracy.value, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--steps", type=int, default=1000, help="pretraining steps")
    parser.add_argument("--ft-steps", type=int, default=300, help="fine-tuning steps")
    parser.add_argument("--seeds", type=int, default=2, help="fine-tuning seeds")
    parser.add_argument("--drop-path", type=float, default=0.1, help="finetune.drop_path")
    parser.add_argument("--mixup", type=float, default=0.0, help="finetune.mixup")
    parser.add_argument("--cutmix", type=float, default=0.0, help="finetune.cutmix")
    parser.add_argument("--reuse", action="store_true", help="fine-tune the pretrained runs left in --workdir")
    parser.add_argument("--no-scratch", action="store_true", help="leave out the scratch rows")
    parser.add_argument("--workdir", default="runs/finetune")
    args = parser.parse_args()
    recipe = {"drop_path": args.drop_path, "mixup": args.mixup, "cutmix": args.cutmix}
    root = Path(args.workdir)
    encoders: dict[str, tuple[Path, object, float | None, float]] = {}  # name -> (workdir, data, probe, seconds)
    done: set[str] = set()
    for name in args.methods.split(","):
        key = f"{name}_mnist"
        if args.reuse:
            config, method, params = load_trained(str(root / key))
            encoders[name] = (root / key, config.data, probes(config, method, params)["linear"], 0.0)
            continue
        overrides = {}
        if name in NEEDS:
            first, field = NEEDS[name]
            if first not in done:
                pretrain(first, args.steps, root / first)
                done.add(first)
            overrides[field] = str(root / first)
        ran = pretrain(key, args.steps, root / key, **overrides)
        done.add(key)
        result = ran["result"]
        linear = probes(ran["config"], result.method, result.state.params)["linear"]
        encoders[name] = (root / key, ran["config"].data, linear, ran["seconds"])
    for label, size in {} if args.no_scratch else SCRATCH.items():
        if not args.reuse:
            scratch(size, root / f"scratch_{size}")
        encoders[label] = (root / f"scratch_{size}", presets.mnist(image_size=(size, size)), None, 0.0)

    rows = []
    for name, (workdir, data, linear, seconds) in encoders.items():
        runs = [
            finetune(workdir, data, args.ft_steps, seed, root / f"ft_{name}_{seed}", **recipe)
            for seed in range(args.seeds)
        ]
        accuracies = [a for a, _ in runs]
        rows.append((name, data.image_size[0], linear, accuracies, seconds, float(np.mean([s for _, s in runs]))))

    print(
        f"\n{args.steps} pretraining steps, {args.ft_steps} fine-tuning steps (batch 128, mean pool, {recipe}), "
        f"seeds {list(range(args.seeds))}; top-1 on the 1,000 held-out digits"
    )
    print("| encoder | image | linear probe (frozen) | fine-tuned, per seed | mean | pretrain time | fine-tune time |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, size, linear, accuracies, seconds, ft_seconds in rows:
        probe = "" if linear is None else f"{100 * linear:.1f}%"
        seeds = " / ".join(f"{100 * a:.1f}%" for a in accuracies)
        print(
            f"| {name} | {size} | {probe} | {seeds} | {100 * np.mean(accuracies):.1f}% | "
            f"{seconds:.0f} s | {ft_seconds:.0f} s |"
        )


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    main()
