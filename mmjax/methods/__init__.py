"""Masked-modeling methods, each a bundle of pure functions, found by name in a registry."""

from mmjax.methods import mae, patchtst, pointmae, simmim
from mmjax.methods.mae import MAE
from mmjax.methods.patchtst import PatchTST
from mmjax.methods.pointmae import PointMAE
from mmjax.methods.protocol import Method
from mmjax.methods.registry import available_methods, build_method, register_method
from mmjax.methods.simmim import SimMIM

__all__ = [
    "MAE",
    "Method",
    "PatchTST",
    "PointMAE",
    "SimMIM",
    "available_methods",
    "build_method",
    "mae",
    "patchtst",
    "pointmae",
    "register_method",
    "simmim",
]
