import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from mmjax.data import train_dataset
from mmjax.data.pipeline import eval_dataset
from mmjax.data.transforms import normalize_images
from mmjax.evaluate.tokenizers import PIXEL_MSE, tokenizer_results
from mmjax.methods import build_method, vq
from mmjax.methods.protocol import STATE_INPUTS
from mmjax.models import quantizers as q
from tests.helpers import load_experiment


def tiny_config(**options):
    config = vq.default_config()
    config.model.update(size=None, image_size=8, patch_size=2, channels=1, width=32, depth=1, heads=4, mlp_dim=64)
    config.tokenizer.update(**{"vocab_size": 16, "code_dim": 8, "levels": (4, 3), "decoder_depth": 1, **options})
    return config


def digits_batch(b=32):
    data = load_experiment("mae_digits").data
    batch = next(iter(train_dataset(data, b, seed=0)))
    return {"image": normalize_images(jnp.asarray(batch["image"]), data.mean, data.std)}


def test_usage_and_perplexity_count_hand_made_assignments():
    ids = jnp.array([[0, 0, 3], [3, 3, 5]])  # codes 0 (x2), 3 (x3), 5 (x1) of 8
    counts = q.code_counts(ids, 8)
    np.testing.assert_array_equal(counts, [2, 0, 0, 3, 0, 1, 0, 0])
    assert float(q.codebook_usage(counts)) == pytest.approx(3 / 8)
    p = np.array([2, 3, 1]) / 6
    assert float(q.code_perplexity(counts)) == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-6)
    assert float(q.code_perplexity(q.code_counts(jnp.arange(8), 8))) == pytest.approx(8.0, rel=1e-6)
    assert float(q.code_perplexity(q.code_counts(jnp.zeros(5, int), 8))) == pytest.approx(1.0)


def test_lookup_is_cosine_nearest_and_ignores_scale():
    codebook = jnp.array([[1.0, 0.0], [0.0, 5.0], [-1.0, -1.0]])
    z = jnp.array([[10.0, 1.0], [0.1, 0.3], [-0.2, -0.1], [3.0, 3.1]])
    np.testing.assert_array_equal(q.nearest_codes(z, codebook), [0, 1, 2, 1])


def test_ema_update_equals_the_formula_and_skips_unused_codes():
    rng = np.random.default_rng(0)
    codebook = np.asarray(q.l2_normalize(jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)))
    z_n = np.asarray(q.l2_normalize(jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)))
    ids = np.array([0, 0, 2, 2, 2, 0])
    stats = q.vq_statistics(jnp.asarray(z_n), jnp.asarray(ids), 4, jax.random.key(0))
    new = np.asarray(q.ema_codebook_update(jnp.asarray(codebook), stats["counts"], stats["sums"], 0.9))
    for code in (0, 2):
        mean = z_n[ids == code].mean(0)
        expected = 0.9 * codebook[code] + 0.1 * mean / np.linalg.norm(mean)
        np.testing.assert_allclose(new[code], expected / np.linalg.norm(expected), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(new[[1, 3]], codebook[[1, 3]])  # unused codes do not move
    # Candidates are rows of the batch.
    candidates = np.asarray(stats["candidates"])
    assert all(np.isclose(z_n, row).all(1).any() for row in candidates)


def test_only_dead_codes_are_restarted():
    codebook = jnp.arange(12.0).reshape(4, 3)
    usage = jnp.array([1.0, 0.01, 0.5, 0.049])
    candidates = -jnp.ones((4, 3))
    new, new_usage, dead = q.restart_dead_codes(codebook, usage, candidates, threshold=0.05)
    np.testing.assert_array_equal(dead, [False, True, False, True])
    np.testing.assert_array_equal(np.asarray(new)[[1, 3]], -np.ones((2, 3)))
    np.testing.assert_array_equal(np.asarray(new)[[0, 2]], np.asarray(codebook)[[0, 2]])
    np.testing.assert_array_equal(new_usage, [1.0, 1.0, 0.5, 1.0])


def test_after_step_restarts_a_code_that_stops_being_used():
    method = build_method(tiny_config(usage_decay=0.5, dead_threshold=0.3))
    # after_step reads only the quantizer state: no network is needed.
    quantizer = {"codebook": q.l2_normalize(jnp.ones((16, 8))), "usage": jnp.ones(16), "restarts": jnp.zeros(())}
    params = {"model": {}, "quantizer": quantizer}
    # A batch that used only code 0: every other code's usage EMA halves each step.
    candidates = q.l2_normalize(jax.random.normal(jax.random.key(1), (16, 8)))
    stats = {
        "counts": jnp.zeros(16).at[0].set(128.0),
        "sums": jnp.zeros((16, 8)).at[0].set(1.0),
        "candidates": candidates,
    }
    after = jax.jit(method.after_step)
    one = after(params, stats, 0)  # usage of codes 1..15: 0.5 (kept)
    assert float(one["quantizer"]["restarts"]) == 0
    np.testing.assert_allclose(one["quantizer"]["usage"][1:], 0.5)
    two = after(one, stats, 1)  # 0.25 < 0.3: restarted from the candidates
    assert float(two["quantizer"]["restarts"]) == 15
    np.testing.assert_allclose(two["quantizer"]["codebook"][1:], stats["candidates"][1:], rtol=1e-6)
    assert float(two["quantizer"]["usage"][0]) > 1.0  # code 0 stays: it was never dead


def test_fsq_ids_round_trip_and_values_lie_on_the_level_grid():
    levels = (8, 5, 5, 5)
    ids = jnp.arange(q.fsq_vocab_size(levels))
    codes = q.fsq_ids_to_codes(ids, levels)
    np.testing.assert_array_equal(q.fsq_codes_to_ids(codes, levels), ids)
    digits = np.asarray(q.fsq_ids_to_digits(ids, levels))
    assert (digits >= 0).all() and (digits < np.array(levels)).all()
    assert len({tuple(row) for row in digits}) == 1000
    z = 3.0 * jax.random.normal(jax.random.key(0), (64, 4))
    z_q, z_ids = q.quantize_fsq(z, levels)
    half = np.array([4, 2, 2, 2])
    steps = np.asarray(z_q) * half
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-5)  # integers / half
    assert (steps >= -half).all() and (steps <= np.array(levels) - 1 - half).all()
    np.testing.assert_allclose(q.fsq_ids_to_codes(z_ids, levels), z_q, atol=1e-6)


def test_straight_through_gradients_reach_the_encoder():
    z = jax.random.normal(jax.random.key(0), (5, 4))
    weights = jax.random.normal(jax.random.key(1), (5, 4))
    # FSQ: d z_q / d z is the bound's derivative divided by the half width (rounding is skipped).
    grad = jax.grad(lambda z: jnp.sum(q.quantize_fsq(z, (8, 5, 5, 5))[0] * weights))(z)
    bound_grad = jax.grad(lambda z: jnp.sum(q.fsq_bound(z, (8, 5, 5, 5)) * weights))(z)
    np.testing.assert_allclose(grad, bound_grad / np.array([4, 2, 2, 2]), rtol=1e-5)
    # VQ: the gradient passes the code lookup to the unit encodings.
    codebook = jax.random.normal(jax.random.key(2), (7, 4))
    grad = jax.grad(lambda z: jnp.sum(q.quantize_vq(z, codebook)[0] * weights))(z)
    norm_grad = jax.grad(lambda z: jnp.sum(q.l2_normalize(z) * weights))(z)
    np.testing.assert_allclose(grad, norm_grad, rtol=1e-5, atol=1e-7)
    assert np.abs(grad).min() > 0


@pytest.mark.parametrize(
    "options",
    [
        {"quantizer": "vq", "codebook": "ema"},
        pytest.param({"quantizer": "vq", "codebook": "straight_through"}, marks=pytest.mark.slow),
        pytest.param({"quantizer": "fsq"}, marks=pytest.mark.slow),
    ],
)
def test_a_few_steps_on_bundled_digits_reduce_the_loss(options):
    method = build_method(tiny_config(**options))
    batch = digits_batch(32)
    params = method.init(jax.random.key(0), batch)
    trainable = method.trainable(params)
    opt = optax.multi_transform({True: optax.adam(3e-3), False: optax.set_to_zero()}, trainable)
    state = opt.init(params)

    @jax.jit
    def step(params, state, key, i):
        (loss, metrics), grads = jax.value_and_grad(method.loss, has_aux=True)(params, batch, key)
        updates, state = opt.update(grads, state, params)
        return method.after_step(optax.apply_updates(params, updates), metrics.pop(STATE_INPUTS, None), i), state

    loss_fn = jax.jit(method.loss)
    before = float(loss_fn(params, batch, jax.random.key(0))[1]["recon_loss"])
    for i in range(30):
        params, state = step(params, state, jax.random.key(i), i)
    _, metrics = loss_fn(params, batch, jax.random.key(0))
    assert float(metrics["recon_loss"]) < 0.6 * before, (before, float(metrics["recon_loss"]))
    assert 1.0 <= float(metrics["perplexity"]) <= method.vocab_size
    codes = method.tokenize(params, batch["image"])
    assert codes.shape == (32, 4, 4) and codes.dtype == jnp.int32
    assert int(codes.min()) >= 0 and int(codes.max()) < method.vocab_size
    recon = method.detokenize(params, codes)
    out = method.reconstruct(params, batch, jax.random.key(0))
    assert set(out) == {"reconstruction", "mask"}  # a tokenizer hides nothing: no masked / pasted images
    np.testing.assert_allclose(recon, out["reconstruction"], atol=1e-4)
    assert out["mask"].shape == (32, 16) and not np.asarray(out["mask"]).any()
    assert method.features(params, batch["image"], pool="mean").shape == (32, 32)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="tokenizer.quantizer must be one of"):
        build_method(tiny_config(quantizer="rvq"))
    with pytest.raises(ValueError, match="tokenizer.codebook"):
        build_method(tiny_config(codebook="kmeans"))
    with pytest.raises(ValueError, match="tokenizer.levels"):
        build_method(tiny_config(levels=(8, 1)))


def eval_config(batch_size=100):
    """What `tokenizer_results` reads: the bundled digits (297 test images), a batch size, the method name."""
    data = load_experiment("mae_digits").data
    return ml_collections.ConfigDict({"method": "vq", "data": data, "eval": {"batch_size": batch_size}})


def normalized_test_images(data):
    batches = list(eval_dataset(data, "test", 1000))
    return np.asarray(normalize_images(np.concatenate([b["image"] for b in batches]), data.mean, data.std))


@dataclasses.dataclass(frozen=True)
class FakeTokenizer:
    """Reconstructs `scale * x`; every image gets `ids(x)` as its one code."""

    vocab_size: int
    ids: object

    def tokenize(self, params, images):
        return self.ids(images)

    def forward(self, params, images):
        return params["scale"] * images, self.ids(images), None


def test_tokenizer_results_of_one_code_everywhere_and_of_a_direct_computation():
    config = eval_config(batch_size=100)  # 297 images: batches of 100, 100, 97 (padded)
    x = normalized_test_images(config.data)
    same = FakeTokenizer(16, lambda images: jnp.full((images.shape[0], 2, 2), 5, jnp.int32))
    rows = {(r.name, r.metric): r for r in tokenizer_results(config, same, {"scale": np.float32(0.5)})}
    assert {r.protocol for r in rows.values()} == {"tokenizer reconstruction"}
    assert rows["vq tokenizer", "codebook usage"].value == pytest.approx(1 / 16)
    assert rows["vq tokenizer", "code perplexity"].value == pytest.approx(1.0)
    assert rows["vq tokenizer", PIXEL_MSE].value == pytest.approx(0.25 * np.mean(x**2), rel=1e-5)
    baseline = rows["dataset mean", PIXEL_MSE]
    assert baseline.baseline and baseline.value == pytest.approx(np.mean(x**2), rel=1e-5)
    assert not rows["vq tokenizer", PIXEL_MSE].baseline

    # The code of an image is the position of its brightest pixel: the counts must be those of
    # the 297 images exactly (the padding of the last batch is not counted).
    brightest = FakeTokenizer(64, lambda images: jnp.argmax(images.reshape(images.shape[0], -1), -1)[:, None, None])
    results = tokenizer_results(config, brightest, {"scale": np.float32(1.0)})
    rows = {r.metric: r.value for r in results if not r.baseline}
    counts = np.bincount(np.argmax(x.reshape(len(x), -1), -1), minlength=64)
    p = counts[counts > 0] / counts.sum()
    assert rows["codebook usage"] == pytest.approx(np.mean(counts > 0))
    assert rows["code perplexity"] == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-5)
    assert 1.0 < rows["code perplexity"] < 64 and rows[PIXEL_MSE] == 0.0


def test_tokenizer_results_of_a_vq_tokenizer_match_its_forward_pass():
    method = build_method(tiny_config())
    config = eval_config(batch_size=128)
    x = normalized_test_images(config.data)
    params = jax.device_get(method.init(jax.random.key(0), {"image": jnp.asarray(x[:1])}))
    rows = {r.metric: r.value for r in tokenizer_results(config, method, params) if not r.baseline}
    recon, ids, _ = jax.jit(method.forward)(params, jnp.asarray(x))
    assert rows[PIXEL_MSE] == pytest.approx(float(np.mean((np.asarray(recon) - x) ** 2)), rel=1e-4)
    counts = q.code_counts(ids, method.vocab_size)
    assert rows["codebook usage"] == pytest.approx(float(q.codebook_usage(counts)))
    assert rows["code perplexity"] == pytest.approx(float(q.code_perplexity(counts)), rel=1e-5)
    assert 0 < rows["codebook usage"] <= 1 and 1 <= rows["code perplexity"] <= method.vocab_size
