"""Masked-modeling methods, each a bundle of pure functions, found by name in a registry."""

from mmjax.methods import audiomae, mae, patchtst, pointmae, remasker, simmim, videomae
from mmjax.methods.audiomae import AudioMAE
from mmjax.methods.mae import MAE
from mmjax.methods.patchtst import PatchTST
from mmjax.methods.pointmae import PointMAE
from mmjax.methods.protocol import Method
from mmjax.methods.registry import available_methods, build_method, register_method
from mmjax.methods.remasker import ReMasker
from mmjax.methods.simmim import SimMIM
from mmjax.methods.videomae import VideoMAE

__all__ = [
    "MAE",
    "Method",
    "PatchTST",
    "PointMAE",
    "ReMasker",
    "SimMIM",
    "available_methods",
    "build_method",
    "mae",
    "patchtst",
    "pointmae",
    "register_method",
    "simmim",
    "AudioMAE",
    "VideoMAE",
    "audiomae",
    "videomae",
    "remasker",
]
