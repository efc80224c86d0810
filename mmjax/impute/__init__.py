"""Tabular imputation with ReMasker: `MaskedImputer(...).fit(X).transform(X)`."""

from mmjax.impute.estimator import MaskedImputer
from mmjax.impute.fit import FitOptions, fit_remasker, impute_table
from mmjax.impute.table import TableCodec

__all__ = ["FitOptions", "MaskedImputer", "TableCodec", "fit_remasker", "impute_table"]
