"""Parts by name: the mask registry, the fixed-count adapter, targets (HOG against an independent
reference), the loss registry, MAE and SimMIM assembled from non-default parts, and which exported
mask generators a config can reach."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.config import ConfigError
from mmjax.losses import LOSSES, masked_l1, masked_loss, masked_mse
from mmjax.masking import fixed_count_mask, random_mask, simmim_mask
from mmjax.masking.registry import MASKS, Layout, check_scores, draw_mask, needed_scores, resolve_mask
from mmjax.methods import build_method, feature_targets, mae, simmim
from mmjax.ops.hog import hog_cells, hog_patches
from mmjax.ops.patches import patchify
from mmjax.targets import TARGETS, make_target, target_dim

# A small layout of each kind.
LAYOUT_SHAPES = {"grid": (4, 4), "video": (2, 4, 4), "sequence": (16,), "series": (2, 8), "points": (8,)}


def check_mask(mask, batch, num_tokens):
    hidden = np.asarray(mask.mask)
    assert hidden.shape == (batch, num_tokens) and hidden.dtype == bool
    if mask.ids_keep is not None:
        check_indices(mask)


def check_indices(mask):
    hidden = np.asarray(mask.mask)
    keep, restore = np.asarray(mask.ids_keep), np.asarray(mask.ids_restore)
    k = keep.shape[1]
    for b in range(hidden.shape[0]):
        assert sorted(restore[b]) == list(range(hidden.shape[1]))  # a permutation
        shuffle = np.argsort(restore[b])
        np.testing.assert_array_equal(shuffle[:k], keep[b])
        np.testing.assert_array_equal(hidden[b], restore[b] >= k)
        assert not hidden[b, keep[b]].any()


@pytest.mark.parametrize("name", MASKS.names())
def test_every_registered_kind_gives_a_valid_mask_for_its_layouts(name):
    chosen = MASKS.choose(name)
    for layout_kind in chosen.part.fits:
        layout = Layout(layout_kind, LAYOUT_SHAPES[layout_kind])
        if layout_kind == "points":
            centers = jax.random.normal(jax.random.key(1), (3, layout.num_tokens, 3))
            layout = Layout(layout_kind, layout.shape, centers=centers)
        scores = {n: jax.random.normal(jax.random.key(2), (3, layout.num_tokens)) for n in needed_scores(chosen)}
        if scores:
            layout = Layout(layout_kind, layout.shape, scores=scores)
        mask = draw_mask(chosen, jax.random.key(0), 3, layout, 0.5)
        check_mask(mask, 3, layout.num_tokens)
        fixed = draw_mask(chosen, jax.random.key(0), 3, layout, 0.5, fixed_count=True)
        check_indices(fixed)
        assert fixed.ids_keep.shape == (3, layout.num_tokens // 2)


def test_fixed_count_adapter_tops_up_and_trims_to_exactly_k():
    hidden = jax.random.uniform(jax.random.key(1), (64, 12)) < jax.random.uniform(jax.random.key(2), (64, 1))
    k = 5
    mask = fixed_count_mask(jax.random.key(3), hidden, k)
    check_indices(mask)
    out, given = np.asarray(mask.mask), np.asarray(hidden)
    assert ((~out).sum(1) == k).all()
    for b in range(64):
        if (~given[b]).sum() <= k:  # too few visible: every visible token stays visible
            assert not out[b][~given[b]].any()
        if (~given[b]).sum() >= k:  # too many: every hidden token stays hidden
            assert out[b][given[b]].all()
    assert len({tuple(r) for r in out}) > 1


def test_default_masks_are_the_generators_own_for_the_same_key():
    key = jax.random.key(7)
    chosen = MASKS.choose("random")
    got = draw_mask(chosen, key, 4, Layout("grid", (4, 4)), 0.75, fixed_count=True)
    want = random_mask(key, 4, 16, 0.75)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    got = draw_mask(MASKS.choose("cells", mask_patch=2), key, 4, Layout("grid", (6, 6)), 0.6)
    np.testing.assert_array_equal(np.asarray(got.mask), np.asarray(simmim_mask(key, 4, (6, 6), 2, 0.6).mask))


def test_a_kind_that_does_not_fit_the_layout_fails_in_one_line():
    with pytest.raises(ConfigError) as err:
        resolve_mask({"kind": "tube"}, "grid", "random")
    message = str(err.value)
    assert "\n" not in message and "mask.kind='tube'" in message and "'blockwise'" in message and "video" in message
    with pytest.raises(ConfigError, match=r"mask.kind='nope': expected one of \('random'"):
        resolve_mask({"kind": "nope"}, "grid", "random")
    with pytest.raises(ConfigError, match="did you mean mask.blockwise.min_block"):
        resolve_mask({"kind": "blockwise", "blockwise": {"min_blok": 3}}, "grid", "random")
    with pytest.raises(ConfigError, match=r"mask.blockwise.min_aspect=-1.0: expected a number > 0"):
        resolve_mask({"kind": "random", "blockwise": {"min_aspect": -1.0}}, "grid", "random")
    config = tiny_mae_config()
    config.mask.kind = "frame"
    with pytest.raises(ConfigError, match="mask.kind='frame'"):
        build_method(config)


# --- HOG ----------------------------------------------------------------------------------


def numpy_hog(image: np.ndarray, cell: int, bins: int) -> np.ndarray:
    """HOG of one `[H, W, C]` image by loops: MaskFeat's convention, written independently of mmjax.

    Sobel cross-correlation with `kx = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]`, `ky = kx.T`, over the
    image reflected by 1 px (the border pixel is not repeated); orientation `atan2(gx, gy)`,
    bin `floor(angle / pi * bins) mod bins`; magnitude summed per cell; L2 over bins per cell and
    channel. Returns `[H / cell, W / cell, C, bins]`.
    """
    h, w, c = image.shape
    kx = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]

    def at(i, j, ch):
        i = -i if i < 0 else (2 * (h - 1) - i if i >= h else i)
        j = -j if j < 0 else (2 * (w - 1) - j if j >= w else j)
        return float(image[i, j, ch])

    out = np.zeros((h // cell, w // cell, c, bins))
    for ch in range(c):
        for i in range(h):
            for j in range(w):
                gx = sum(kx[u][v] * at(i + u - 1, j + v - 1, ch) for u in range(3) for v in range(3))
                gy = sum(kx[v][u] * at(i + u - 1, j + v - 1, ch) for u in range(3) for v in range(3))
                b = math.floor(math.atan2(gx, gy) / math.pi * bins) % bins
                out[i // cell, j // cell, ch, b] += math.hypot(gx, gy)
    norm = np.sqrt((out**2).sum(-1, keepdims=True))
    return out / np.maximum(norm, 1e-12)


def test_hog_matches_an_independent_loop_reference():
    images = np.asarray(jax.random.uniform(jax.random.key(0), (2, 8, 8, 2)))
    got = np.asarray(hog_cells(jnp.asarray(images), cell=4, bins=9))
    want = np.stack([numpy_hog(im, 4, 9) for im in images])
    np.testing.assert_allclose(got, want, atol=1e-5)
    # Per patch: 8 px patches of 4 px cells -> 2 x 2 cells x 2 channels x 9 bins.
    patches = np.asarray(hog_patches(jnp.asarray(images), 8, cell=4, bins=9))
    assert patches.shape == (2, 1, 72)
    np.testing.assert_allclose(patches[:, 0], want.reshape(2, 72), atol=1e-5)


def test_hog_of_a_horizontal_ramp_is_one_bin():
    # x = column index: gx = x[j-1] - x[j+1] weighted 1, 2, 1 = -8, gy = 0: angle -pi/2 -> bin 4 of 9.
    ramp = jnp.broadcast_to(jnp.arange(8.0)[None, None, :, None], (1, 8, 8, 1))
    cells = np.asarray(hog_cells(ramp, cell=4))
    np.testing.assert_allclose(cells[..., 4], 1.0, atol=1e-6)
    np.testing.assert_allclose(np.delete(cells, 4, axis=-1), 0.0, atol=1e-6)


def test_targets_by_name_and_their_widths():
    images = jax.random.normal(jax.random.key(1), (2, 8, 8, 3))
    pixels = make_target(TARGETS.choose("pixels"), images, 4)
    np.testing.assert_array_equal(np.asarray(pixels), np.asarray(patchify(images, 4)))
    normed = np.asarray(make_target(TARGETS.choose("norm_pixels"), images, 4))
    np.testing.assert_allclose(normed.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(normed.std(-1, ddof=1), 1.0, atol=1e-4)
    hog = TARGETS.choose("hog", cell=2)
    assert make_target(hog, images, 4).shape == (2, 4, target_dim(hog, 4, 3)) and target_dim(hog, 4, 3) == 108
    fourier = TARGETS.choose("fourier", part="both")
    out = np.asarray(make_target(fourier, images, 4))
    assert out.shape == (2, 4, 96)
    patch = np.asarray(images)[0, :4, :4, 0]
    np.testing.assert_allclose(out[0, 0, :48].reshape(4, 4, 3)[..., 0], np.log1p(np.abs(np.fft.fft2(patch))), atol=1e-4)
    with pytest.raises(ValueError, match="cell=3 must divide the patch size"):
        target_dim(TARGETS.choose("hog", cell=3), 4, 3)


# --- Losses -------------------------------------------------------------------------------


def test_loss_registry_values():
    pred = jax.random.normal(jax.random.key(0), (2, 3, 4))
    target = jax.random.normal(jax.random.key(1), (2, 3, 4))
    weights = jnp.array([[True, False, True], [False, True, True]])
    p, t, w = np.asarray(pred), np.asarray(target), np.asarray(weights)
    d = p - t
    ad = np.abs(d)
    per_token = {
        "mse": (d**2).mean(-1),
        "l1": ad.mean(-1),
        "smooth_l1": np.where(ad < 0.5, 0.5 * d**2 / 0.5, ad - 0.25).mean(-1),
        "cosine": 1 - (p * t).sum(-1) / (np.linalg.norm(p, axis=-1) * np.linalg.norm(t, axis=-1)),
    }
    for name, values in per_token.items():
        chosen = LOSSES.choose(name, beta=0.5) if name == "smooth_l1" else LOSSES.choose(name)
        np.testing.assert_allclose(float(masked_loss(chosen, pred, target, weights)), values[w].mean(), rtol=1e-5)
    codes = jnp.array([[0, 3, 1], [2, 2, 0]])
    logp = p - np.log(np.exp(p).sum(-1, keepdims=True))
    ce = -np.take_along_axis(logp, np.asarray(codes)[..., None], -1)[..., 0]
    got = masked_loss(LOSSES.choose("cross_entropy"), pred, codes, weights)
    np.testing.assert_allclose(float(got), ce[w].mean(), rtol=1e-5)
    # The methods' old losses, bit for bit; the feature losses share the same functions.
    assert float(masked_loss(LOSSES.choose("mse"), pred, target, weights)) == float(masked_mse(pred, target, weights))
    assert float(masked_loss(LOSSES.choose("l1"), pred, target, weights)) == float(masked_l1(pred, target, weights))
    for name in ("smooth_l1", "cosine"):
        want = feature_targets.feature_loss(pred, target, weights, name)
        assert float(masked_loss(LOSSES.choose(name), pred, target, weights)) == float(want)
    assert float(masked_loss(LOSSES.choose("mse"), pred, target, jnp.zeros((2, 3), bool))) == 0.0
    assert LOSSES.names("codes") == ("cross_entropy",)
    with pytest.raises(ConfigError, match=r"loss.kind='cross_entropy'.*expected one of"):
        LOSSES.resolve({"kind": "cross_entropy"}, "real", "mse")


# --- Methods assembled from parts ---------------------------------------------------------


def tiny_mae_config():
    config = mae.default_config()
    config.model.update(size=None, image_size=16, patch_size=4, channels=1, width=32, depth=1, heads=2, mlp_dim=64)
    config.decoder.update(width=16, depth=1, heads=2, mlp_dim=32)
    return config


def tiny_simmim_config():
    config = simmim.default_config()
    config.model.update(size=None, image_size=16, patch_size=4, channels=1, width=32, depth=1, heads=2, mlp_dim=64)
    return config


def finite_loss_and_grad(method, image_size):
    batch = {"image": jax.random.normal(jax.random.key(0), (2, image_size, image_size, 1))}
    params = jax.jit(method.init)(jax.random.key(0), batch)
    loss_and_grad = jax.jit(jax.value_and_grad(method.loss, has_aux=True))  # one compile, not op-by-op
    (loss, metrics), grads = loss_and_grad(params, batch, jax.random.key(1))
    assert np.isfinite(float(loss)) and float(loss) > 0
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
    return params, metrics


def test_mae_with_the_blockwise_mask_keeps_its_fixed_count():
    config = tiny_mae_config()
    config.mask.kind = "blockwise"
    config.mask.blockwise.min_block = 2
    method = build_method(config)
    assert method.mask_part.name == "blockwise" and method.mask_part.args.min_block == 2
    mask = jax.jit(method.make_mask, static_argnums=1)(jax.random.key(3), 8)
    check_indices(mask)
    assert mask.ids_keep.shape == (8, 4)  # int(16 * 0.25) visible
    _, metrics = finite_loss_and_grad(method, 16)
    assert float(metrics["mask_ratio"]) == 0.75
    with pytest.raises(ValueError, match="noise reproduces a random mask"):
        method.make_mask(jax.random.key(0), 2, noise=jnp.zeros((2, 16)))


def test_the_prior_guided_mask_hides_the_busiest_patches_of_mae_and_simmim():
    # Left half of each 16 x 16 image is noise, right half flat: at ratio 0.5 and a low
    # temperature the hidden patches are exactly the noisy ones (pixel_std is the prior).
    images = jax.random.normal(jax.random.key(0), (3, 16, 16, 1)) * (jnp.arange(16) < 8)[None, None, :, None]
    noisy = np.tile(np.arange(4) < 2, 4)  # row-major 4 x 4 patch grid
    for config in (tiny_mae_config(), tiny_simmim_config()):
        config.mask.kind = "prior_guided"
        config.mask.prior_guided.temperature = 1e-3
        config[config.method].mask_ratio = 0.5
        method = build_method(config)
        assert needed_scores(method.mask_part) == ("pixel_std",)
        mask = method.make_mask(jax.random.key(1), 3, images=images)
        np.testing.assert_array_equal(np.asarray(mask.mask), np.broadcast_to(noisy, (3, 16)))
        finite_loss_and_grad(method, 16)
        with pytest.raises(ValueError, match="score maps of the images"):
            method.make_mask(jax.random.key(1), 3)
    with pytest.raises(ConfigError, match=r"mask.kind='prior_guided' reads the 'pixel_std' score map.*'videomae'"):
        check_scores(method.mask_part, (), "videomae")
    config.mask.prior_guided.prior = "saliency"
    with pytest.raises(ConfigError, match="mask.prior_guided.prior"):
        build_method(config)


def test_mae_with_disjoint_views_sees_every_patch_once_and_averages_the_view_losses():
    config = tiny_mae_config()
    config.dmjd.num_views = 4  # 4 views of int(16 * 0.25) = 4 visible patches: each patch visible exactly once
    method = build_method(config)
    mask = method.term("dmjd").masks(jax.random.key(3), 2)
    assert mask.ids_keep.shape == (8, 4)
    visible = ~np.asarray(mask.mask).reshape(4, 2, 16)
    np.testing.assert_array_equal(visible.sum(axis=0), np.ones((2, 16)))
    params, metrics = finite_loss_and_grad(method, 16)
    assert float(metrics["mask_ratio"]) == 0.75
    # The joint loss is the mean of the four single-view MAE losses on the same masks.
    batch = {"image": jax.random.normal(jax.random.key(0), (2, 16, 16, 1))}
    joint, _ = method.loss(params, batch, jax.random.key(5))
    views = method.term("dmjd").masks(jax.random.key(5), 2)
    single = build_method(tiny_mae_config())
    per_view = []
    for v in range(4):
        view = jax.tree.map(lambda x, v=v: x[2 * v : 2 * v + 2], views)
        pred, _ = single.model.apply({"params": params}, batch["image"], view)
        target = make_target(single.target_part, batch["image"], 4)
        per_view.append(float(masked_loss(single.loss_part, pred, target, view.mask)))
    np.testing.assert_allclose(float(joint), np.mean(per_view), rtol=1e-5)
    with pytest.raises(ValueError, match="noise reproduces one random mask"):
        method.predict(params, batch, jax.random.key(0), noise=jnp.zeros((2, 16)))
    config.dmjd.num_views = 5
    with pytest.raises(ConfigError, match=r"dmjd.num_views=5: 5 disjoint views of 4 visible patches need 20"):
        build_method(config)
    config.dmjd.num_views = 2
    config.mask.kind = "blockwise"
    with pytest.raises(ConfigError, match="expected mask.kind='random'"):
        build_method(config)


def test_simmim_with_hog_targets_predicts_the_hog_width():
    config = tiny_simmim_config()
    config.target.kind = "hog"
    config.target.hog.cell = 2
    method = build_method(config)
    assert method.out_dim == 2 * 2 * 9
    params, _ = finite_loss_and_grad(method, 16)
    assert params["head"]["kernel"].shape == (32, 36)
    with pytest.raises(ValueError, match="reconstruct needs a pixel target"):
        method.reconstruct(params, {"image": jnp.zeros((1, 16, 16, 1))}, jax.random.key(0))
    config.target.hog.cell = 3
    with pytest.raises(ConfigError, match="target.hog with model.patch_size"):
        build_method(config)


def test_parts_default_to_the_papers_and_old_configs_without_the_sections_load():
    m, s = build_method(tiny_mae_config()), build_method(tiny_simmim_config())
    assert (m.mask_part.name, m.target_part.name, m.loss_part.name) == ("random", "norm_pixels", "mse")
    assert (s.mask_part.name, s.target_part.name, s.loss_part.name) == ("cells", "pixels", "l1")
    assert s.mask_part.args.mask_patch == s.mask_patch == 2
    old = tiny_mae_config()
    for section in ("mask", "target", "loss"):
        del old[section]
    old.mae.norm_pix_loss = False
    legacy = build_method(old)
    assert (legacy.mask_part.name, legacy.target_part.name, legacy.norm_pix_loss) == ("random", "pixels", False)
    config = tiny_mae_config()
    config.target.kind = "pixels"  # an explicit target wins over mae.norm_pix_loss
    assert not build_method(config).norm_pix_loss
    # SimMIM's cell side is its own knob: no mask.cells subsection to contradict it.
    assert "cells" not in tiny_simmim_config().mask and "cells" in tiny_mae_config().mask
    config = tiny_simmim_config()
    config.mask.kind = "random"
    assert build_method(config).make_mask(jax.random.key(0), 2).mask.sum() == 2 * 10  # 16 - int(16 * 0.4) per row
