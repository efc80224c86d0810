"""Video, audio, time series and point clouds: one table of probes and baselines.

Trains each modality's bundled experiment (default steps) and evaluates it:

- video, audio, UCR series, point clouds: linear probe of the pretrained encoder against
  the same architecture at random initialization (video / audio: mean of 3 random seeds);
- series imputation and forecasting on held-out windows: RMSE in units of each window's
  std, against linear interpolation, last value and seasonal naive. PatchTST and TimesBERT
  (`timesbert_series:data=uni`) train on the same univariate series for the same steps.

    python benchmarks/modalities.py                 # everything (tens of minutes on 2 CPU cores)
    python benchmarks/modalities.py --only series   # video | audio | series | points
    python benchmarks/modalities.py --only series --steps 500   # series and points at 500 steps
    python benchmarks/modalities.py --quick         # smoke run; numbers not meaningful

The per-modality scripts `modalities_av.py` and `modalities_sp.py` run their halves.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import modalities_av  # noqa: E402
import modalities_sp  # noqa: E402

MODALITIES = ("video", "audio", "series", "points")


def series_rows(steps: int | None) -> list[dict]:
    """PatchTST's and TimesBERT's rows: the same data (PatchTST's univariate series), the same steps."""
    table = []
    for name, experiment, variant in (
        ("PatchTST", "patchtst_series", None),
        ("TimesBERT", "timesbert_series", "data=uni"),
    ):
        rows = modalities_sp.series_rows(steps, experiment, variant)
        table += [{**row, "modality": f"series ({name})"} for row in rows]
    return table


def rows(quick: bool = False, only: str | None = None, steps: int | None = None) -> list[dict]:
    """`steps`: the series and points experiments' training steps (None: theirs, or `quick`'s)."""
    table = []
    for modality in ("video", "audio"):
        if only in (None, modality):
            table += modalities_av.rows(quick, modality)
    steps = {"series": steps, "points": steps} if steps else {"series": 100, "points": 50} if quick else {}
    if only in (None, "series"):
        table += series_rows(steps.get("series"))
    if only in (None, "points"):
        table += modalities_sp.points_rows(steps.get("points"))
    return table


def cell(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value if value is not None else "")


def markdown(table: list[dict]) -> str:
    lines = [
        "| modality | task | metric | pretrained | random encoder | baseline | steps | train s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in table:
        baseline = row.get("baseline")
        if isinstance(baseline, float):
            baseline = f"raw input {baseline:.3f}"
        lines.append(
            f"| {row['modality']} | {row['task']} | {row['metric']} | {cell(row['pretrained'])} | "
            f"{cell(row.get('random'))} | {cell(baseline)} | {row['steps']} | {row['wall_s']:.0f} |"
        )
    return "\n".join(lines)


def verdicts(table: list[dict]) -> list[str]:
    """The acceptance checks: pretrained beats random on every probe; imputation beats linear interpolation."""
    failures = []
    for row in table:
        lower_is_better = "RMSE" in row["metric"]
        random = row.get("random")
        if random is not None and (row["pretrained"] >= random if lower_is_better else row["pretrained"] <= random):
            name = f"{row['modality']} {row['task']}"
            failures.append(f"{name}: pretrained {row['pretrained']:.3f} vs random {random:.3f}")
        if "imputation" in row["task"] and row.get("baseline_value") is not None:
            if row["pretrained"] >= row["baseline_value"]:
                failures.append(f"imputation {row['pretrained']:.3f} does not beat linear interpolation")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=MODALITIES)
    parser.add_argument("--steps", type=int, help="training steps of the series and points experiments")
    args = parser.parse_args()
    table = rows(args.quick, args.only, args.steps)
    print(markdown(table))
    failures = verdicts(table)
    print("all checks hold" if not failures else "FAILED: " + "; ".join(failures))


if __name__ == "__main__":
    main()
