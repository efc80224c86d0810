"""Bundled point clouds: surface samples of trimesh primitives under random rotation and anisotropic scale.

Every cloud is a deterministic function of `(seed, split, index)`; the label is the shape
class. Clouds are centered and scaled into the unit ball, as Point-MAE's ShapeNet loader.
Registers the data kind `points`: host batches `{"points": float32 [b, P, 3]}`.
"""

from __future__ import annotations

import functools
from typing import Any

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.config import section_config
from mmjax.data.pipeline import batched_stream
from mmjax.data.presets import PointsData, complete_data
from mmjax.data.registry import DataKind, register_data_kind

SHAPE_CLASSES = ("sphere", "box", "cylinder", "cone", "torus", "capsule", "annulus", "icosahedron")
_SPLITS = {"train": 0, "test": 1}


@functools.cache
def _primitive(name: str) -> Any:
    import trimesh

    make = {
        "sphere": lambda: trimesh.creation.icosphere(subdivisions=3),
        "box": lambda: trimesh.creation.box(extents=(1.5, 1.5, 1.5)),
        "cylinder": lambda: trimesh.creation.cylinder(radius=0.75, height=1.5, sections=48),
        "cone": lambda: trimesh.creation.cone(radius=0.75, height=1.5, sections=48),
        "torus": lambda: trimesh.creation.torus(major_radius=0.7, minor_radius=0.25),
        "capsule": lambda: trimesh.creation.capsule(height=1.0, radius=0.45, count=(24, 24)),
        "annulus": lambda: trimesh.creation.annulus(r_min=0.5, r_max=0.75, height=1.0, sections=48),
        "icosahedron": lambda: trimesh.creation.icosahedron(),
    }
    if name not in make:
        raise ValueError(f"shape class {name!r} is unknown; expected one of {SHAPE_CLASSES}")
    return make[name]()


def sample_shape(name: str, num_points: int, rng: np.random.Generator, scale_range: tuple[float, float]) -> np.ndarray:
    """One cloud float32 `[num_points, 3]`: scale each axis by U(scale_range), sample the surface, rotate, normalize.

    Surface sampling is area-weighted over the scaled triangles, uniform inside each one.
    """
    from scipy.spatial.transform import Rotation

    triangles = _primitive(name).triangles * rng.uniform(*scale_range, size=3)  # [F, 3, 3]
    areas = 0.5 * np.linalg.norm(np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]), axis=1)
    faces = rng.choice(len(triangles), size=num_points, p=areas / areas.sum())
    u, v = rng.uniform(size=(2, num_points, 1))
    flip = u + v > 1  # reflect into the triangle
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    a, b, c = triangles[faces, 0], triangles[faces, 1], triangles[faces, 2]
    points = a + u * (b - a) + v * (c - a)
    points = points @ Rotation.random(random_state=rng).as_matrix().T
    points = points - points.mean(axis=0)
    return (points / np.max(np.linalg.norm(points, axis=1))).astype(np.float32)


@functools.cache
def shape_clouds(
    split: str,
    per_class: int,
    num_points: int,
    seed: int = 0,
    scale_range: tuple[float, float] = (0.5, 1.5),
    classes: tuple[str, ...] = SHAPE_CLASSES,
) -> tuple[np.ndarray, np.ndarray]:
    """`per_class` clouds of every class: float32 `[C * per_class, num_points, 3]`, int32 labels `[C * per_class]`.

    Cached; treat the arrays as read-only.
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {sorted(_SPLITS)}, got {split!r}")
    clouds, labels = [], []
    for label, name in enumerate(classes):
        rng = np.random.default_rng([seed, _SPLITS[split], label])
        clouds += [sample_shape(name, num_points, rng, scale_range) for _ in range(per_class)]
        labels += [label] * per_class
    return np.stack(clouds), np.array(labels, np.int32)


def shapes_config(
    num_points: int = 256, train_per_class: int = 64, test_per_class: int = 32
) -> ml_collections.ConfigDict:
    """The `data` section of the `points` kind over the bundled shapes."""
    return section_config(
        PointsData,
        source="shapes",
        num_points=num_points,
        train_per_class=train_per_class,
        test_per_class=test_per_class,
        scale_range=(0.5, 1.5),
    )


def point_clouds(data_config: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
    """`(clouds [N, P, 3], labels [N])` of a split of `data_config.source`."""
    data_config = complete_data(PointsData, data_config)
    if data_config.source == "shapes":
        per_class = data_config.train_per_class if split == "train" else data_config.test_per_class
        return shape_clouds(split, per_class, data_config.num_points, 0, tuple(data_config.scale_range))
    if data_config.source == "npz":
        return npz_clouds(data_config, split)
    raise ValueError(f"data.source={data_config.source!r} is not a point-cloud source; expected 'shapes' or 'npz'")


def npz_clouds(data_config: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
    """User-provided clouds: `data.path` formatted with the split (e.g. `/data/shapenet55_{split}.npz`).

    Each file holds `points` float `[N, >= num_points, 3]` (normalized to the unit ball) and
    `labels` int `[N]`; the first `num_points` points of each cloud are used.
    """
    path = data_config.path.format(split=split)
    with np.load(path) as f:
        points, labels = f["points"], f["labels"]
    if points.ndim != 3 or points.shape[2] != 3 or points.shape[1] < data_config.num_points:
        raise ValueError(
            f"{path}: points must be [N, >= data.num_points={data_config.num_points}, 3]; got {points.shape}"
        )
    return points[:, : data_config.num_points].astype(np.float32), labels.astype(np.int32)


def points_train_dataset(
    data_config: Any, global_batch_size: int, seed: int, process_index: int, process_count: int
) -> grain.IterDataset:
    """Endless shuffled batches `{"points": float32 [b, P, 3]}` of the train split (labels unused)."""
    data_config = complete_data(PointsData, data_config)
    clouds, _ = point_clouds(data_config, "train")
    records = [{"points": c} for c in clouds]
    ds = grain.MapDataset.source(records)[process_index::process_count].shuffle(seed=seed).repeat(None)
    return batched_stream(ds, global_batch_size, process_count, data_config)


def points_batch_spec(data_config: Any, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    data_config = complete_data(PointsData, data_config)
    return {"points": jax.ShapeDtypeStruct((batch_size, data_config.num_points, 3), jnp.float32)}


POINTS = register_data_kind(DataKind("points", points_train_dataset, points_batch_spec))
