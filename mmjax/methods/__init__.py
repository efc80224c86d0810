"""Masked-modeling methods, each a bundle of pure functions, found by name in a registry."""

from mmjax.methods import mae, maskgit, simmim, vq
from mmjax.methods.mae import MAE
from mmjax.methods.maskgit import MaskGIT
from mmjax.methods.protocol import Method
from mmjax.methods.registry import available_methods, build_method, register_method
from mmjax.methods.simmim import SimMIM
from mmjax.methods.vq import VQTokenizer

__all__ = [
    "MAE",
    "MaskGIT",
    "Method",
    "SimMIM",
    "available_methods",
    "build_method",
    "mae",
    "maskgit",
    "register_method",
    "simmim",
    "vq",
    "VQTokenizer",
]
