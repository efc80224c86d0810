"""TimesBERT: masked patch modeling with [VAR] / [DOM] functional tokens on bundled multivariate series.

`data=multi` (the default) pretrains on windows of 3 variates from four bundled sets
(statsmodels' macrodata, sktime's Uschange, BasicMotions and JapaneseVowels) with all three
objectives: masked patches, swapped variates ([VAR]) and the source set ([DOM]). `data=uni`
trains on PatchTST's data (`patchtst_series`: univariate sunspots, co2, elnino, window 96), where
only the masked-patch and domain objectives apply, and PatchTST's mask ratio 0.4 (so the
imputation rows hide the same share of patches), for a like-for-like comparison.

`evaluate` reports imputation and forecasting on univariate held-out windows (each column of the
sets) against linear interpolation, last value and seasonal naive, and linear probes on bundled
UCR/UEA sets. A few minutes on 2 CPU cores.

Variants: `steps=N`, `data=multi|uni` (the window, a multiple of the patch length 8: `--config.data.window`).
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data.series import series_config
from mmjax.methods import timesbert
from mmjax.train.defaults import training_sections

DATA = {
    "multi": {
        "sources": ("macrodata", "uschange", "BasicMotions", "JapaneseVowels"),
        "variates": 3,
        "window": 32,
        "probe_sets": ("BasicMotions", "GunPoint", "ItalyPowerDemand"),
    },
    "uni": {
        "sources": ("sunspots", "co2", "elnino"),
        "variates": 1,
        "window": 96,
        "probe_sets": None,
        "mask_ratio": 0.4,
    },
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, steps=1500, data="multi")
    if variant["data"] not in DATA:
        raise ValueError(f"data={variant['data']!r}: expected one of {sorted(DATA)}")
    data = DATA[variant["data"]]
    config = training_sections(timesbert.default_config())
    config.model.update(width=64, depth=2, heads=4, mlp_dim=128)
    config.timesbert.patch_len = 8
    if "mask_ratio" in data:  # otherwise the method's default
        config.timesbert.mask_ratio = data["mask_ratio"]
    probes = {} if data["probe_sets"] is None else {"probe_sets": data["probe_sets"]}
    config.data = series_config(sources=data["sources"], window=data["window"], **probes)
    config.data.variates = data["variates"]
    config.train.update(
        steps=variant["steps"], batch_size=64, lr=1e-3, warmup_steps=50, weight_decay=0.01, log_every=100
    )
    config.train.update(checkpoint_every=variant["steps"])
    config.eval.series.update(steps=300, stride=4, horizon_patches=2)
    return config
