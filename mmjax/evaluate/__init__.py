"""Evaluation: linear probes, figures, end-of-pretraining reports."""

from mmjax.evaluate.figures import image_grid, save_png
from mmjax.evaluate.generation import conditioning_accuracy, frechet_distance
from mmjax.evaluate.knn import knn_accuracy
from mmjax.evaluate.linear_probe import extract_features, linear_probe
from mmjax.evaluate.pretraining import evaluate_pretraining, probe_table, reconstruction_figure

__all__ = [
    "conditioning_accuracy",
    "evaluate_pretraining",
    "extract_features",
    "frechet_distance",
    "image_grid",
    "knn_accuracy",
    "linear_probe",
    "probe_table",
    "reconstruction_figure",
    "save_png",
]
