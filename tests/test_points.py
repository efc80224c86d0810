"""Point clouds: FPS, Chamfer distance, mini-PointNet, Point-MAE and the bundled shapes."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.data.kinds import data_kind
from mmjax.data.shapes import SHAPE_CLASSES, point_clouds, sample_shape, shape_clouds
from mmjax.evaluate.points import cloud_probe, evaluate_points
from mmjax.evaluate.protocols import settings
from mmjax.masking.points import farthest_point_sampling
from mmjax.methods.registry import build_method
from mmjax.models.pointmae import MiniPointNet
from mmjax.ops.pointcloud import chamfer_distance
from tests.helpers import descend, load_experiment


def tiny_config():
    config = load_experiment("pointmae_shapes")
    config.model.update(width=16, depth=1, heads=2, mlp_dim=32)
    config.decoder.update(width=16, depth=1, heads=2, mlp_dim=32)
    config.pointmae.update(num_groups=8, group_size=8, pointnet_hidden=(8, 16))
    config.data.update(num_points=64, train_per_class=2, test_per_class=1)
    return config


def test_fps_picks_the_farthest_point_at_each_step():
    points = np.random.default_rng(0).normal(size=(3, 50, 3)).astype(np.float32)
    ids = np.asarray(farthest_point_sampling(jnp.asarray(points), 10))
    for b in range(3):
        picked = [0]  # starts at point 0
        for _ in range(9):
            d2 = ((points[b][:, None] - points[b][picked][None]) ** 2).sum(-1).min(1)
            picked.append(int(np.argmax(d2)))
        assert ids[b].tolist() == picked
        assert len(set(picked)) == 10


def test_chamfer_equals_brute_force():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 3, 7, 3)), rng.normal(size=(2, 3, 5, 3))
    got = np.asarray(chamfer_distance(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)))
    assert got.shape == (2, 3)
    for i, j in itertools.product(range(2), range(3)):
        ab = np.mean([min(np.sum((p - q) ** 2) for q in b[i, j]) for p in a[i, j]])
        ba = np.mean([min(np.sum((p - q) ** 2) for p in a[i, j]) for q in b[i, j]])
        np.testing.assert_allclose(got[i, j], ab + ba, rtol=1e-5)
    np.testing.assert_allclose(chamfer_distance(jnp.asarray(a[0]), jnp.asarray(a[0])), 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="must be"):
        chamfer_distance(jnp.zeros((2, 4, 3)), jnp.zeros((2, 4, 2)))


def test_mini_pointnet_is_invariant_to_point_order_in_a_group():
    groups = jax.random.normal(jax.random.key(0), (2, 4, 8, 3))
    net = MiniPointNet(width=16, hidden=(8, 16))
    params = net.init(jax.random.key(1), groups)
    out = net.apply(params, groups)
    perm = jax.random.permutation(jax.random.key(2), 8)
    np.testing.assert_allclose(net.apply(params, groups[:, :, perm]), out, atol=1e-5)
    moved = groups.at[0, 0, 3].add(1.0)  # but not to the points themselves
    assert not np.allclose(net.apply(params, moved)[0, 0], out[0, 0])
    np.testing.assert_allclose(net.apply(params, moved)[1], out[1], atol=1e-6)


@pytest.mark.slow  # long: kept out of CI's 15-minute budget; run with -m slow
def test_a_few_steps_reduce_the_chamfer_loss():
    config = tiny_config()
    method = build_method(config)
    clouds, _ = shape_clouds("train", 2, 64)
    batch = {"points": jnp.asarray(clouds)}
    params = jax.jit(method.init)(jax.random.key(0), batch)
    rng = jax.random.key(1)
    losses = descend(lambda p: method.loss(p, batch, rng)[0], params, steps=25)
    assert losses[-1] < 0.5 * losses[0]


def test_shapes_are_deterministic_normalized_and_distinct():
    a, labels = shape_clouds("test", 1, 64, seed=3)
    b = np.stack(
        [sample_shape(n, 64, np.random.default_rng([3, 1, i]), (0.5, 1.5)) for i, n in enumerate(SHAPE_CLASSES)]
    )
    np.testing.assert_array_equal(a, b)  # one seed per (seed, split, class)
    assert labels.tolist() == list(range(len(SHAPE_CLASSES)))
    np.testing.assert_allclose(np.linalg.norm(a, axis=-1).max(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(a.mean(axis=1), 0.0, atol=1e-5)
    train, _ = shape_clouds("train", 1, 64, seed=3)
    assert not np.allclose(train, a)


def test_points_kind_batches_are_deterministic():
    config = tiny_config()
    kind = data_kind(config.data)
    first = next(iter(kind.train_dataset(config.data, 4, 0, 0, 1)))
    again = next(iter(kind.train_dataset(config.data, 4, 0, 0, 1)))
    assert first["points"].shape == (4, 64, 3) == kind.batch_spec(config.data, 4)["points"].shape
    np.testing.assert_array_equal(first["points"], again["points"])


def test_config_errors_name_the_field():
    config = tiny_config()
    config.pointmae.num_groups = 100
    with pytest.raises(ValueError, match="pointmae.num_groups=100"):
        build_method(config)
    config.pointmae.num_groups = 8
    config.pointmae.mask_ratio = 1.0
    with pytest.raises(ValueError, match="pointmae.mask_ratio"):
        build_method(config)


def test_shapenet_experiment_is_paper_scale_and_reads_npz(tmp_path):
    config = load_experiment("pointmae_shapenet")
    method = build_method(config)
    assert (config.data.num_points, method.options.num_groups, method.options.group_size) == (1024, 64, 32)
    assert (method.options.mask_ratio, method.encoder.width, method.encoder.depth) == (0.6, 384, 12)
    clouds = np.random.default_rng(0).normal(size=(3, 1100, 3)).astype(np.float32)
    np.savez(tmp_path / "train.npz", points=clouds, labels=np.arange(3))
    config.data.path = str(tmp_path / "{split}.npz")
    points, labels = point_clouds(config.data, "train")
    np.testing.assert_array_equal(points, clouds[:, :1024])
    assert labels.tolist() == [0, 1, 2]
    np.savez(tmp_path / "test.npz", points=clouds[:, :100], labels=np.arange(3))
    with pytest.raises(ValueError, match="data.num_points=1024"):
        point_clouds(config.data, "test")


def test_evaluation_rows_compare_the_encoder_with_a_random_one():
    config = tiny_config()
    config.eval.points_probe.steps = 20
    method = build_method(config)
    init = jax.jit(method.init)
    example = {"points": jnp.zeros((1, 64, 3), jnp.float32)}
    trained, random = init(jax.random.key(0), example), init(jax.random.key(config.seed + 12345), example)
    probe = settings(config, "points_probe")
    results = evaluate_points(config, method, trained, probe)
    assert [(r.protocol, r.name, r.metric, r.baseline, r.split) for r in results] == [
        ("linear probe", "pointmae encoder", "accuracy", False, "test"),
        ("linear probe", "random encoder", "accuracy", True, "test"),
    ]
    # Each row is the probe of its own parameters.
    expected = cloud_probe(method, {"trained": trained, "random": random}, config.data, probe)
    assert [r.value for r in results] == [expected["trained"], expected["random"]]
    # 8 test clouds (one per class): an accuracy is a whole number of them.
    assert all(0 <= r.value <= 1 and (8 * r.value) % 1 == 0 for r in results)


def test_attention_impl_reaches_the_model_and_pallas_gives_the_xla_loss():
    config = tiny_config()
    xla = build_method(config)
    config.model.attention_impl = "pallas"  # Pallas interpret mode on CPU
    pallas = build_method(config)
    assert (xla.model.transformer.attention_impl, pallas.model.transformer.attention_impl) == ("xla", "pallas")
    clouds, _ = shape_clouds("train", 1, 64)
    batch = {"points": jnp.asarray(clouds[:2])}
    params = jax.jit(xla.init)(jax.random.key(0), batch)
    rng = jax.random.key(1)
    assert "pallas_call" in str(jax.make_jaxpr(pallas.loss)(params, batch, rng))
    want = jax.jit(xla.loss)(params, batch, rng)[0]
    got = jax.jit(pallas.loss)(params, batch, rng)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    config.model.attention_impl = "flash"
    with pytest.raises(ValueError, match=r"model\.attention_impl='flash': expected one of") as err:
        build_method(config)
    assert "\n" not in str(err.value)
