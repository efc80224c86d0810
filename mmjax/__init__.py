"""mmjax: masked modeling in JAX/Flax.

Subpackages:
  masking  pure mask generators and the `Mask` pytree
  ops      patchify, position embeddings, the attention entry point
  models   Flax Linen modules (ViT encoder, MAE decoder)
  losses   masked reductions and objectives
  methods  methods (MAE, ...) and their registry
  impute   tabular imputation with ReMasker (`MaskedImputer`)
  export   weight import (HF ViTMAE, HF ViT, timm) and export (HF, safetensors, StableHLO)
"""

import importlib
from typing import Any

__version__ = "0.1.0"

# Names of the public API and the module each comes from. They load on first use, so that
# `python -m mmjax` can take charge of signals and errors before jax and flax import.
_SUBPACKAGES = ("export", "impute", "losses", "masking", "methods", "models", "ops")
_NAMES = {
    "MAE": "mmjax.methods",
    "build_method": "mmjax.methods",
    "Mask": "mmjax.masking",
    "random_mask": "mmjax.masking",
    "random_mask_from_noise": "mmjax.masking",
}


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"mmjax.{name}")
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'mmjax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "MAE",
    "Mask",
    "__version__",
    "build_method",
    "export",
    "impute",
    "losses",
    "masking",
    "methods",
    "models",
    "ops",
    "random_mask",
    "random_mask_from_noise",
]
