"""Masked-modeling methods, each a bundle of pure functions, found by name in a registry."""

from mmjax.methods import mae, mlm, simmim
from mmjax.methods.mae import MAE
from mmjax.methods.mlm import MLM
from mmjax.methods.protocol import Method
from mmjax.methods.registry import available_methods, build_method, register_method
from mmjax.methods.simmim import SimMIM

__all__ = [
    "MAE",
    "MLM",
    "Method",
    "SimMIM",
    "available_methods",
    "build_method",
    "mae",
    "mlm",
    "register_method",
    "simmim",
]
