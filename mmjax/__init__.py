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

from mmjax import export, impute, losses, masking, methods, models, ops
from mmjax.masking import Mask, random_mask, random_mask_from_noise
from mmjax.methods import MAE, build_method

__version__ = "0.1.0"

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
