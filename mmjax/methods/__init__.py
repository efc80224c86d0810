"""Masked-modeling methods, each a bundle of pure functions, found by name in a registry."""

from mmjax.methods import mae, remasker, simmim
from mmjax.methods.mae import MAE
from mmjax.methods.protocol import Method
from mmjax.methods.registry import available_methods, build_method, register_method
from mmjax.methods.remasker import ReMasker
from mmjax.methods.simmim import SimMIM

__all__ = [
    "MAE",
    "Method",
    "ReMasker",
    "SimMIM",
    "available_methods",
    "build_method",
    "mae",
    "register_method",
    "remasker",
    "simmim",
]
