"""Masked-modeling methods, each a bundle of pure functions, found by name in a registry."""

from mmjax.methods import mae
from mmjax.methods.mae import MAE
from mmjax.methods.protocol import Method
from mmjax.methods.registry import available_methods, build_method, register_method

__all__ = ["MAE", "Method", "available_methods", "build_method", "mae", "register_method"]
