"""Masked-modeling methods, each a bundle of pure functions, found by name in a registry."""

from mmjax.methods import distill, jepa, mae, simmim
from mmjax.methods.distill import Distill
from mmjax.methods.jepa import JEPA
from mmjax.methods.mae import MAE
from mmjax.methods.protocol import Method
from mmjax.methods.registry import available_methods, build_method, register_method
from mmjax.methods.simmim import SimMIM

__all__ = [
    "Distill",
    "JEPA",
    "MAE",
    "Method",
    "SimMIM",
    "available_methods",
    "build_method",
    "distill",
    "jepa",
    "mae",
    "register_method",
    "simmim",
]
