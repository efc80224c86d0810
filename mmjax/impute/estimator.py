"""`MaskedImputer`: a scikit-learn style imputer that trains ReMasker on the table it is given."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmjax.impute.fit import FitOptions, fit_ensemble, fit_remasker
from mmjax.impute.recipe import TableRecipe, resolve_recipe
from mmjax.impute.table import TableCodec
from mmjax.methods.remasker import ReMasker, ReMaskerOptions
from mmjax.methods.table_fill import impute_ensemble, impute_table
from mmjax.ops.attention import DEFAULT_IMPLEMENTATION


class MaskedImputer:
    """Fill the missing cells of a table with ReMasker (masked autoencoding of the observed cells).

    `fit(X)` standardizes the numeric columns with their observed mean and std, one-hot
    encodes the `categorical` columns, and trains ReMasker on X's observed cells;
    `transform(X)` returns X (same type: NumPy array or pandas DataFrame) with every
    missing cell filled and every observed cell copied unchanged. Categorical cells get
    the most likely category. NaN (or None / pandas NA in categorical columns) marks a
    missing cell.

    Args:
      categorical: columns (names for a DataFrame, indices for an array) holding categories.
      width, depth, heads: encoder size (mlp 2 x width).
      decoder_width, decoder_depth: decoder size (heads as the encoder's).
      remask_ratio: fraction of each row's observed cells re-masked per step.
      width, decoder_width, remask_ratio, epochs, batch_size, min_steps: None (the default)
        = chosen by `fit` from the table's shape (`mmjax.impute.recipe.table_recipe`: width
        32 and re-mask 0.3 under 48 columns, else 64 and 0.5; batches of 64 under 1024
        rows, else 128; 100 epochs, >= 600 steps, 1200 if wide); a value given here always wins.
      visible_loss_weight: weight of the visible cells' reconstruction in the loss.
      epochs, batch_size, lr, weight_decay, warmup_epochs: the training recipe.
      min_steps: a fit runs at least this many optimizer steps: on small tables (few
        batches an epoch) `epochs` is raised to `ceil(min_steps / batches_per_epoch)`
        (`fit_epochs`; `epochs_` after `fit`). 0 = exactly `epochs`.
      ensemble: how many models to train (vmapped, one compilation) and average; 1 = plain
        ReMasker. Averaging is an addition to ReMasker.
      periodic_features, periodic_scale: `K` learned frequencies per column (initialized
        N(0, periodic_scale^2)) of a periodic value embedding added to the linear one
        (`TableMAE.embed`); 0 = the linear embedding only. An addition to ReMasker.
      tta_passes, tta_ratio: each missing cell is predicted from `tta_passes` views of its
        row, the first with every observed cell, the others also re-masking a random
        `tta_ratio` of them, and the predictions are averaged (test-time augmentation,
        `ReMasker.impute_averaged`; an addition to ReMasker). 1 = a single full view.
      attention_impl: the `mmjax.ops.attention` implementation (`remasker.attention_impl`).
      seed: fixes everything random; the same seed gives the same output.

    Tuning record. The narrow-table recipe (a small model, re-mask 30%, visible-cell loss
    weight 1, 100 epochs at lr 3e-3) was tuned on wine and diabetes at 30% MCAR missing
    (benchmarks/imputation.py, seed 100): on tables of a few hundred rows, bigger models
    and longer runs overfit. `ensemble=5` (what benchmarks/imputation.py ran then) lowered the
    30% MCAR RMSE there (breast_cancer 0.558 -> 0.527, wine 0.773 -> 0.754, diabetes
    0.793 -> 0.770, seeds 0-4) for 5x the training compute.

    The periodic embedding (K=8, scale 0.2), test-time averaging (8 views, re-mask 30%)
    and min_steps=600 were tuned with `ensemble=5` on seeds 100-104 only (30% MCAR;
    `python benchmarks/imputation.py --rates 0.3 --seeds 100,101,102,103,104 --methods
    mmjax --mmjax periodic_features=0,tta_passes=1,min_steps=0` and so on). RMSE wine /
    diabetes there: old recipe 0.768 / 0.777; + test-time averaging 0.756 / 0.780;
    + periodic (scale 0.5) 0.749 / 0.796 (it overfit diabetes); + min_steps (wine: 200
    epochs) 0.745; with scale 0.2 instead 0.739 / 0.777 (kept). Measured once afterwards on
    the reported seeds 0-4 (`python benchmarks/imputation.py --rates 0.3`): wine 0.754 ->
    0.731 (Iterative(ExtraTrees) 0.731: a tie), diabetes 0.770 -> 0.766, breast_cancer
    0.527 -> 0.489 (Iterative(BayesianRidge) 0.441; diabetes' best baseline is 0.797).
    Cost: wine fits take 2x the steps (about 17 s -> 35 s with ensemble=5); elsewhere the
    embedding and the 8 inference views add about 10%. benchmarks/imputation.py then moved
    to `ensemble=10` (wine 0.739 -> 0.735 on seeds 100-104), a second look at seeds 0-4:
    breast_cancer 0.488, wine 0.726, diabetes 0.765, for about 2x the time of ensemble=5.

    The shape rule (`table_recipe`) keeps all of the above for tables under 48 columns and
    was set for the wide ones (digits 1797 x 61, fertility 192 x 52) on seed 100 only, one
    model each (30% MCAR; `python benchmarks/imputation.py --rates 0.3 --seeds 100 --datasets
    fertility --methods mmjax --mmjax ensemble=1,width=32,decoder_width=32,remask_ratio=0.3`
    and so on). RMSE: fertility with the narrow values 0.085, width 64 and re-mask 0.5
    0.077, and with >= 1200 steps instead of 600 0.046; digits (batches of 128) at 600 steps
    0.799 narrow, 0.768 wide, and wide at 100 epochs (1500 steps) 0.702 (KNN 0.722 there).
    Nothing else was tried; the thresholds (48 columns, 1024 rows) were set by hand between
    the bundled tables' shapes, not tuned. Reported afterwards on seeds 0-1 (benchmarks/
    RESULTS.md, 2 models on narrow tables, 1 on wide): at 30% mmjax beats the best
    scikit-learn imputer on diabetes only of the 7 bundled tables.

    Example:
      >>> filled = MaskedImputer(epochs=50).fit_transform(X)  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        categorical: Sequence | None = None,
        width: int | None = None,
        depth: int = 2,
        heads: int = 4,
        decoder_width: int | None = None,
        decoder_depth: int = 1,
        remask_ratio: float | None = None,
        visible_loss_weight: float = 1.0,
        epochs: int | None = None,
        min_steps: int | None = None,
        batch_size: int | None = None,
        lr: float = 3e-3,
        weight_decay: float = 0.05,
        warmup_epochs: int = 20,
        ensemble: int = 1,
        periodic_features: int = 8,
        periodic_scale: float = 0.2,
        tta_passes: int = 8,
        tta_ratio: float = 0.3,
        attention_impl: str = DEFAULT_IMPLEMENTATION,
        seed: int = 0,
    ):
        self.categorical = categorical
        self.width = width
        self.depth = depth
        self.heads = heads
        self.decoder_width = decoder_width
        self.decoder_depth = decoder_depth
        self.remask_ratio = remask_ratio
        self.visible_loss_weight = visible_loss_weight
        self.epochs = epochs
        self.min_steps = min_steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_epochs = warmup_epochs
        self.ensemble = ensemble
        self.periodic_features = periodic_features
        self.periodic_scale = periodic_scale
        self.tta_passes = tta_passes
        self.tta_ratio = tta_ratio
        self.attention_impl = attention_impl
        self.seed = seed

    # scikit-learn's parameter protocol (clone, grid search, pipelines).
    @classmethod
    def _param_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, as scikit-learn's `BaseEstimator.get_params`."""
        del deep
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> MaskedImputer:
        """Set constructor arguments by name; unknown names are errors."""
        known = self._param_names()
        for name, value in params.items():
            if name not in known:
                raise ValueError(f"MaskedImputer has no parameter {name!r}; parameters are {known}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = inspect.signature(type(self)).parameters
        changed = {k: v for k, v in self.get_params().items() if v != defaults[k].default}
        return f"MaskedImputer({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def _method(self, codec: TableCodec, recipe: TableRecipe) -> ReMasker:
        groups = codec.groups
        options = ReMaskerOptions(
            num_columns=len(groups),
            width=recipe.width,
            depth=self.depth,
            heads=self.heads,
            mlp_dim=2 * recipe.width,
            decoder_width=recipe.decoder_width,
            decoder_depth=self.decoder_depth,
            decoder_heads=self.heads,
            decoder_mlp_dim=2 * recipe.decoder_width,
            remask_ratio=recipe.remask_ratio,
            visible_loss_weight=self.visible_loss_weight,
            groups=groups if len(set(groups)) < len(groups) else None,
            periodic_features=self.periodic_features,
            periodic_scale=self.periodic_scale,
            attention_impl=self.attention_impl,
        )
        return ReMasker(options)

    def recipe(self, num_rows: int, num_columns: int) -> TableRecipe:
        """The recipe of a fit on `num_rows` x `num_columns` (model columns): the rule
        (`mmjax.impute.recipe.table_recipe`) with every constructor value that is not None in its place."""
        fields = ("width", "decoder_width", "remask_ratio", "batch_size", "epochs", "min_steps")
        return resolve_recipe(num_rows, num_columns, **{name: getattr(self, name) for name in fields})

    def fit_epochs(self, num_rows: int, num_columns: int) -> int:
        """Epochs trained on a `num_rows` x `num_columns` table: `epochs`, raised to >= `min_steps` steps."""
        return self.recipe(num_rows, num_columns).fit_epochs(num_rows)

    def fit(self, X: Any, y: Any = None) -> MaskedImputer:
        """Learn the columns' statistics and train ReMasker on X's observed cells (`y` is ignored).

        The recipe used is kept as `recipe_` and its fields as `width_`, `decoder_width_`,
        `remask_ratio_`, `batch_size_`, `min_steps_`; `epochs_` is the epochs trained.
        """
        del y
        if self.ensemble < 1:
            raise ValueError(f"MaskedImputer ensemble must be >= 1 (models to average), got {self.ensemble}")
        codec = TableCodec.fit(X, self.categorical)
        values = codec.encode(X)
        recipe = self.recipe(*values.shape)
        method = self._method(codec, recipe)
        options = FitOptions(
            epochs=recipe.fit_epochs(values.shape[0]),
            batch_size=recipe.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            warmup_epochs=self.warmup_epochs,
        )
        if self.ensemble == 1:
            params, losses = fit_remasker(method, values, options, self.seed)
        else:
            params, losses = fit_ensemble(method, values, options, self.seed, self.ensemble)
        if not np.isfinite(losses).all():
            per_step = losses.reshape(-1, losses.shape[-1])  # [K, steps]
            member, step = (int(i[0]) for i in np.nonzero(~np.isfinite(per_step)))
            raise FloatingPointError(
                f"ReMasker training loss became {per_step[member, step]} at step {step}; try a lower lr"
            )
        self.codec_, self.method_, self.params_, self.losses_ = codec, method, params, losses
        self.recipe_ = recipe
        for name, value in dataclasses.asdict(recipe).items():
            setattr(self, f"{name}_", value)
        self.epochs_ = options.epochs
        self.n_features_in_ = len(codec.columns)
        return self

    def transform(self, X: Any) -> Any:
        """X with its missing cells filled (same type as X); observed cells are returned unchanged."""
        if not hasattr(self, "params_"):
            raise RuntimeError("MaskedImputer.transform was called before fit; call fit(X) first")
        values = self.codec_.encode(X)
        impute = impute_table if self.ensemble == 1 else impute_ensemble
        filled = impute(
            self.method_, self.params_, values, passes=self.tta_passes, ratio=self.tta_ratio, seed=self.seed
        )
        return self.codec_.decode(filled, X)

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        """`fit(X).transform(X)`."""
        return self.fit(X, y).transform(X)
