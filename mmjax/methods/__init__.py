"""Masked-modeling methods, each a bundle of pure functions, found by name in a registry.

Every module of this package is imported here, so a method (`register_method`) or an add-on
term (`mmjax.methods.terms.register_term`) defined in a new module is found with no import list.
"""

import importlib
import pkgutil

from mmjax.methods.audiomae import AudioMAE
from mmjax.methods.beit import BEiT
from mmjax.methods.continuous import ContinuousGenerator
from mmjax.methods.distill import Distill
from mmjax.methods.finetune import FineTune
from mmjax.methods.grid_jepa import GridJEPA
from mmjax.methods.jepa import JEPA
from mmjax.methods.mae import MAE
from mmjax.methods.maskgit import MaskGIT
from mmjax.methods.mlm import MLM
from mmjax.methods.patchtst import PatchTST
from mmjax.methods.pointmae import PointMAE
from mmjax.methods.protocol import EvalResult, Method
from mmjax.methods.registry import available_methods, build_method, register_method
from mmjax.methods.remasker import ReMasker
from mmjax.methods.simmim import SimMIM
from mmjax.methods.timesbert import TimesBERT
from mmjax.methods.vae import VAETokenizer
from mmjax.methods.videomae import VideoMAE
from mmjax.methods.vq import VQTokenizer

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "MAE",
    "AudioMAE",
    "BEiT",
    "ContinuousGenerator",
    "MaskGIT",
    "MLM",
    "Distill",
    "FineTune",
    "JEPA",
    "GridJEPA",
    "EvalResult",
    "Method",
    "PatchTST",
    "PointMAE",
    "ReMasker",
    "SimMIM",
    "TimesBERT",
    "VAETokenizer",
    "VQTokenizer",
    "VideoMAE",
    "audiomae",
    "available_methods",
    "beit",
    "build_method",
    "continuous",
    "distill",
    "finetune",
    "givt",
    "grid_jepa",
    "jepa",
    "mae",
    "mar",
    "maskgit",
    "mlm",
    "patchtst",
    "pointmae",
    "register_method",
    "remasker",
    "simmim",
    "timesbert",
    "vae",
    "videomae",
    "vq",
]
