"""Evaluation: named protocols (linear probe, kNN, figures, imputation, generation, ...), end-of-pretraining reports."""

from mmjax.evaluate.figures import image_grid, save_png
from mmjax.evaluate.generation import conditioning_accuracy, frechet_distance
from mmjax.evaluate.images import knn_table, probe_table, reconstruction_figure
from mmjax.evaluate.knn import knn_accuracy
from mmjax.evaluate.linear_probe import extract_features, linear_probe
from mmjax.evaluate.pretraining import evaluate_pretraining
from mmjax.evaluate.protocols import (
    available_protocols,
    check_protocols,
    register_protocol,
    requested_protocols,
    run_protocols,
)

__all__ = [
    "available_protocols",
    "check_protocols",
    "conditioning_accuracy",
    "evaluate_pretraining",
    "extract_features",
    "frechet_distance",
    "image_grid",
    "knn_accuracy",
    "knn_table",
    "linear_probe",
    "probe_table",
    "reconstruction_figure",
    "register_protocol",
    "requested_protocols",
    "run_protocols",
    "save_png",
]
