"""Tabular imputation with ReMasker: `MaskedImputer(...).fit(X).transform(X)`."""

from mmjax.impute.estimator import MaskedImputer
from mmjax.impute.fit import FitOptions, fit_ensemble, fit_remasker, impute_ensemble, impute_table
from mmjax.impute.recipe import TableRecipe, table_recipe
from mmjax.impute.table import TableCodec

__all__ = [
    "FitOptions",
    "MaskedImputer",
    "TableCodec",
    "TableRecipe",
    "fit_ensemble",
    "fit_remasker",
    "impute_ensemble",
    "impute_table",
    "table_recipe",
]
