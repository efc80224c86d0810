"""Tabular imputation with ReMasker: `MaskedImputer(...).fit(X).transform(X)`."""

from mmjax.impute.estimator import MaskedImputer
from mmjax.impute.fit import FitOptions, fit_ensemble, fit_remasker
from mmjax.impute.recipe import TableRecipe, table_recipe
from mmjax.impute.table import TableCodec
from mmjax.methods.table_fill import impute_ensemble, impute_table

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
