"""The evidence bench: each system next to its base and its random encoder, over seeds, at one budget per family.

Every run is its own workdir (`<root>/<family>/<system>/seed<k>`): a finished run (its
`bench.json`, written after its last evaluation) is skipped, an unfinished one resumes from its
checkpoints, so the bench can run in the background in pieces, be stopped at any moment (SIGTERM,
Ctrl-C) and be started again until it completes. Each run also evaluates every `curve_every`
steps (`eval.every_steps`), so its `eval.json` history is the curve behind the family's budget.
The finished runs are collected into one JSON and rendered as one table per family into
`benchmarks/RESULTS.md` (between the `<!-- bench -->` markers): each protocol's trained value and
random encoder, mean and standard deviation over the seeds.

    python benchmarks/bench.py --list
    python benchmarks/bench.py --only mae,hpm --seeds 3         # train and evaluate what is missing
    python benchmarks/bench.py --render                          # collect -> bench_results.json -> RESULTS.md

`--steps`, `--curve-every` and `--set KEY=VALUE` (any config field) change every run: for smoke
tests, with a `--root` of their own.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import statistics
from pathlib import Path

from mmjax.config import load_experiment
from mmjax.evaluate import evaluate_pretraining
from mmjax.files import write_text_atomic
from mmjax.train import Preempted, train

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "benchmarks" / "bench_results.json"
RESULTS_MD = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- bench -->", "<!-- /bench -->"


@dataclasses.dataclass(frozen=True)
class System:
    experiment: str  # experiments/<experiment>.py
    what: str
    base: str | None = None  # the system of the same family it is compared with


@dataclasses.dataclass(frozen=True)
class Family:
    steps: int
    curve_every: int
    protocols: tuple[str, ...]
    systems: dict[str, System]


FAMILIES = {
    "vision": Family(
        steps=1500,
        curve_every=250,
        protocols=("lowshot_probe", "knn", "linear_probe"),
        systems={
            "mae": System("mae_mnist", "MAE"),
            "hpm": System("mae_hpm_mnist", "HPM: mask.kind=hard_patch", "mae"),
            "attmask": System("mae_attmask_mnist", "AttMask's mask on MAE", "mae"),
            "dmjd": System("mae_dmjd_mnist", "DMJD's disjoint views", "mae"),
            "target_budget": System("mae_target_budget_mnist", "4M's target budget, one modality", "mae"),
            "localmim": System("mae_localmim_mnist", "LocalMIM", "mae"),
            "simmim": System("simmim_mnist", "SimMIM"),
            "simmim_hog": System("simmim_hog_mnist", "SimMIM with HOG targets (MaskFeat's)", "simmim"),
            "mfm": System("simmim_mfm_mnist", "MFM: SimMIM in the frequency domain", "simmim"),
            "jepa": System("jepa_mnist", "I-JEPA"),
            "stop": System("jepa_stop_mnist", "StoP: I-JEPA with noised target positions", "jepa"),
            "capi": System("jepa_capi_mnist", "CAPI-style cluster targets on I-JEPA", "jepa"),
        },
    ),
}
SYSTEMS = {name: (family, system) for family, f in FAMILIES.items() for name, system in f.systems.items()}


def parse_sets(items: list[str]) -> dict[str, object]:
    """`["model.width=16", "eval.protocols=('knn',)"]` -> `{"model.width": 16, ...}` (Python literals, else text)."""
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[key] = text
    return out


def run_config(name: str, seed: int, steps: int, curve_every: int, sets: dict[str, object]):
    family, system = SYSTEMS[name]
    config = load_experiment(ROOT / "experiments" / f"{system.experiment}.py")
    config.seed = seed
    config.train.update(steps=steps, checkpoint_every=curve_every)
    config.eval.update(protocols=FAMILIES[family].protocols, every_steps=curve_every)
    for key, value in sets.items():
        *path, field = key.split(".")
        section = config
        for part in path:
            section = section[part]
        section[field] = value
    return config


def run(name: str, seed: int, workdir: Path, steps: int, curve_every: int, sets: dict[str, object]) -> bool:
    """Train (or resume) and evaluate one run unless it is finished; True if it ran."""
    if (workdir / "bench.json").exists():
        return False
    config = run_config(name, seed, steps, curve_every, sets)
    result = train(config, str(workdir))
    evaluate_pretraining(config, result.method, result.state.params, str(workdir), step=result.step)
    family, _ = SYSTEMS[name]
    record = {"family": family, "system": name, "seed": seed, "steps": result.step}
    write_text_atomic(workdir / "bench.json", json.dumps(record) + "\n")
    return True


def collect(root: Path) -> dict:
    """`{family: {system: {seed: {"steps": S, "rows": {protocol: {"trained" | baseline name: value}}}}}}`."""
    out: dict = {}
    for path in sorted(root.glob("*/*/seed*/bench.json")):
        record = json.loads(path.read_text())
        rows: dict = {}
        for r in json.loads((path.parent / "eval.json").read_text())["results"]:
            rows.setdefault(r["protocol"], {})[r["name"] if r["baseline"] else "trained"] = r["value"]
        system = out.setdefault(record["family"], {}).setdefault(record["system"], {})
        system[str(record["seed"])] = {"steps": record["steps"], "rows": rows}
    return out


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    mean = 100 * statistics.fmean(values)
    spread = f" ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else ""
    return f"{mean:.1f}{spread} ({len(values)})"


def render(results: dict) -> str:
    """One markdown table per family: per protocol the trained encoder and the random one, mean ± sd (seeds)."""
    parts = []
    for family, systems in results.items():
        protocols = list(dict.fromkeys(p for runs in systems.values() for run in runs.values() for p in run["rows"]))
        steps = sorted({run["steps"] for runs in systems.values() for run in runs.values()})
        header = ["system", "base"] + [f"{p}: trained / random encoder" for p in protocols]
        lines = [f"**{family}**, {', '.join(map(str, steps))} steps; accuracy %, mean ± sd (seeds)", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        for name, runs in systems.items():
            base = SYSTEMS[name][1].base if name in SYSTEMS else None
            cells = [name, base or "-"]
            for p in protocols:
                trained = [run["rows"][p]["trained"] for run in runs.values() if p in run["rows"]]
                random = [run["rows"][p]["random encoder"] for run in runs.values() if p in run["rows"]]
                cells.append(f"{_cell(trained)} / {_cell(random)}")
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def write_markdown(path: Path, table: str) -> None:
    """Put `table` between the bench markers of `path` (appended with them when absent)."""
    text = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{table}\n{END}"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = (
            text.rstrip()
            + ("\n\n" if text else "")
            + "## The evidence bench (`benchmarks/bench.py`)\n\n"
            + block
            + "\n"
        )
    write_text_atomic(path, text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="name every system, its family, experiment and base")
    parser.add_argument("--only", default="", help="comma-separated systems (default: all)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--root", default="runs/bench")
    parser.add_argument("--render", action="store_true", help="only collect the finished runs and write the tables")
    parser.add_argument("--steps", type=int, default=None, help="instead of each family's budget (smoke tests)")
    parser.add_argument("--curve-every", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE for every run's config")
    parser.add_argument("--results", default=str(RESULTS_JSON))
    parser.add_argument("--markdown", default=str(RESULTS_MD))
    args = parser.parse_args(argv)
    if args.list:
        for name, (family, system) in SYSTEMS.items():
            print(
                f"{name:14s} {family:8s} experiments/{system.experiment}.py  base: {system.base or '-'}  {system.what}"
            )
        return
    names = [n for n in args.only.split(",") if n] or list(SYSTEMS)
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown:
        raise SystemExit(f"--only {','.join(unknown)}: not a system of the bench; --list names them")
    root, sets = Path(args.root), parse_sets(args.set)
    if not args.render:
        for name in names:
            family = FAMILIES[SYSTEMS[name][0]]
            steps = args.steps or family.steps
            curve_every = args.curve_every or min(family.curve_every, steps)
            for seed in range(args.seeds):
                workdir = root / SYSTEMS[name][0] / name / f"seed{seed}"
                try:
                    ran = run(name, seed, workdir, steps, curve_every, sets)
                except Preempted as stop:  # the checkpoint is saved; the same command goes on from it
                    print(stop, flush=True)
                    raise
                print(f"{name} seed {seed}: {'done' if ran else 'finished before, skipped'} ({workdir})", flush=True)
    results = collect(root)
    write_text_atomic(Path(args.results), json.dumps(results, indent=1, sort_keys=True) + "\n")
    write_markdown(Path(args.markdown), render(results))
    print(render(results))


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    main()
