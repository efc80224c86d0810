"""VideoMAE: tubelet ops, tube masks, the moving-digits clips, and a short training run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.config import ConfigError
from mmjax.data.moving_digits import MovingDigitsSource, bounce_path
from mmjax.methods.videomae import VideoMAE
from mmjax.ops.tubelets import (
    normalize_tubelet_channels,
    sincos_3d,
    sincos_flat,
    tubelet_grid,
    tubeletify,
    untubeletify,
)
from mmjax.train import train
from tests.av_helpers import tiny_config


def test_tubelet_round_trip_and_vector_order():
    videos = jax.random.normal(jax.random.key(0), (2, 4, 8, 12, 3))
    tubes = tubeletify(videos, (2, 4, 4))
    assert tubes.shape == (2, 2 * 2 * 3, 2 * 4 * 4 * 3)
    np.testing.assert_array_equal(untubeletify(tubes, (2, 2, 3), (2, 4, 4)), videos)
    # Token (t=1, row=1, col=2) is index 1*6 + 1*3 + 2 = 11; its vector starts at frame 2, pixel (4, 8), channel 0,
    # and entry (frame 1 in tubelet, row 3, col 1, channel 2) is at 1*48 + 3*12 + 1*3 + 2.
    np.testing.assert_array_equal(tubes[0, 11, 0], videos[0, 2, 4, 8, 0])
    np.testing.assert_array_equal(tubes[0, 11, 48 + 36 + 3 + 2], videos[0, 3, 7, 9, 2])


def test_tubelet_sizes_that_do_not_tile_are_named():
    with pytest.raises(ValueError, match="not divisible by tubelet_size"):
        tubelet_grid((8, 32, 30), (2, 4, 4))


def test_sincos_3d_is_separable_over_time_and_space():
    emb = sincos_3d((3, 2, 4), 48).reshape(3, 2, 4, 48)
    spatial = 2 * (48 // 6)
    # Spatial part ignores time, time part ignores space, and all 24 positions differ.
    np.testing.assert_array_equal(emb[0, :, :, : 2 * spatial], emb[2, :, :, : 2 * spatial])
    np.testing.assert_array_equal(emb[1, 0, 0, 2 * spatial :], emb[1, 1, 3, 2 * spatial :])
    flat = emb.reshape(24, 48)
    assert len({row.tobytes() for row in flat}) == 24
    np.testing.assert_allclose(flat[0], np.tile([0.0] * 8 + [1.0] * 8, 3), atol=1e-7)  # position (0, 0, 0)


def test_sincos_flat_is_videomae_interleaved_table_over_the_flat_index():
    table = sincos_flat(10, 6)
    angle = np.arange(10)[:, None] / 10000.0 ** (2 * (np.arange(6) // 2) / 6)
    np.testing.assert_allclose(table[:, 0::2], np.sin(angle[:, 0::2]), atol=1e-7)
    np.testing.assert_allclose(table[:, 1::2], np.cos(angle[:, 1::2]), atol=1e-7)
    with pytest.raises(ValueError, match="even dim"):
        sincos_flat(10, 7)


def test_normalize_tubelet_channels_is_per_channel_with_the_unbiased_std():
    tubes = jax.random.normal(jax.random.key(1), (2, 3, 4 * 2)) * jnp.array([1.0, 10.0] * 4) + jnp.array([0.0, 5.0] * 4)
    out = np.asarray(normalize_tubelet_channels(tubes, channels=2)).reshape(2, 3, 4, 2)
    np.testing.assert_allclose(out.mean(axis=2), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=2, ddof=1), 1.0, atol=1e-4)  # each channel on its own scale
    x = np.asarray(tubes).reshape(2, 3, 4, 2)[0, 0, :, 1]
    np.testing.assert_allclose(out[0, 0, :, 1], (x - x.mean()) / (x.std(ddof=1) + 1e-6), rtol=1e-5)


def test_videomae_targets_follow_the_style_and_unnormalize_knobs():
    config = tiny_config("videomae")
    videos = jax.random.normal(jax.random.key(2), (2, 8, 32, 32, 1))
    patches = tubeletify(videos, (2, 8, 8))
    config.videomae.norm_pix_loss = True
    default = VideoMAE.from_config(config).targets(patches)
    np.testing.assert_allclose(np.asarray(default).mean(-1), 0.0, atol=1e-5)  # MAE's: the whole vector
    config.videomae.update(norm_pix_style="videomae", unnormalize_target=True, norm_pix_loss=False)
    raw = VideoMAE.from_config(config).targets(patches)
    np.testing.assert_allclose(raw, patches * 0.18 + 0.05, rtol=1e-6)  # data.std / data.mean of moving digits
    config.data.mean = (0.1, 0.2)
    with pytest.raises(ConfigError, match=r"data.mean=\(0.1, 0.2\): videomae.unnormalize_target needs one value"):
        VideoMAE.from_config(config)


def test_videomae_tube_mask_hides_the_same_places_in_every_time_slot():
    method = VideoMAE.from_config(tiny_config("videomae"))
    grid = method.grid
    assert grid == (4, 4, 4)  # 8 x 32 x 32 clips in 2 x 8 x 8 tubelets
    mask = method.make_mask(jax.random.key(3), 6, jnp.zeros(()))
    hidden = np.asarray(mask.mask).reshape(6, 4, 16)
    assert (hidden == hidden[:, :1]).all()
    np.testing.assert_array_equal(hidden.sum(-1), int(0.9 * 16))
    assert not (hidden[0, 0] == hidden[1, 0]).all()  # examples differ


def test_bounce_path_reflects_at_the_walls():
    np.testing.assert_array_equal(bounce_path(8.0, 2.0, 5, 10.0), [8, 10, 8, 6, 4])
    np.testing.assert_array_equal(bounce_path(1.0, -2.0, 4, 10.0), [1, 1, 3, 5])


def test_moving_digits_are_deterministic_and_labelled():
    train_a = MovingDigitsSource("train", 20)
    train_b = MovingDigitsSource("train", 20)
    test = MovingDigitsSource("test", 20)
    clip = train_a[13]
    assert clip["video"].shape == (8, 32, 32, 1) and clip["video"].dtype == np.uint8
    assert int(clip["label"]) == 3
    np.testing.assert_array_equal(clip["video"], train_b[13]["video"])
    assert not np.array_equal(clip["video"], test[13]["video"])
    assert not np.array_equal(clip["video"][0], clip["video"][-1])  # the digits move
    # Every frame shows digit ink, and no more than two 14x14 digits' worth of pixels.
    ink = (clip["video"] > 0).reshape(8, -1).sum(-1)
    assert (ink > 20).all() and (ink <= 2 * 14 * 14).all()


@pytest.mark.slow  # long: kept out of CI's 15-minute budget; run with -m slow
def test_a_few_videomae_steps_reduce_the_loss(tmp_path):
    config = tiny_config("videomae", steps=20)
    config.videomae.norm_pix_loss = True
    result = train(config, str(tmp_path))
    losses = [row["loss"] for row in result.history]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert all(abs(row["mask_ratio"] - 14 / 16) < 1e-6 for row in result.history)
    features = result.method.features(result.state.params, jnp.zeros((2, 8, 32, 32, 1)))
    assert features.shape == (2, config.model.width)


def test_kinetics_experiment_builds_videomae_b():
    from mmjax.methods.registry import build_method
    from tests.helpers import load_experiment

    config = load_experiment("videomae_kinetics", "data=ssv2")
    method = build_method(config)
    assert method.grid == (8, 14, 14) and method.patch_dim == 2 * 16 * 16 * 3
    assert config.data.frame_stride == 2
    mask = jax.eval_shape(lambda: method.make_mask(jax.random.key(0), 2, jnp.zeros(())))
    assert mask.ids_keep.shape == (2, 8 * (196 - int(0.9 * 196)))


def test_npy_folder_reads_user_clips_with_stride_and_class_labels(tmp_path):
    from mmjax.data.video import NpyVideoFolder

    for name, value in (("cat", 10), ("dog", 20)):
        (tmp_path / name).mkdir()
        clip = np.full((6, 4, 4, 3), value, np.uint8) + np.arange(6, dtype=np.uint8)[:, None, None, None]
        np.save(tmp_path / name / "a.npy", clip)
    source = NpyVideoFolder(str(tmp_path), frames=3, image_size=(4, 4), frame_stride=2)
    example = source[1]
    assert int(example["label"]) == 1 and example["video"].shape == (3, 4, 4, 3)
    np.testing.assert_array_equal(example["video"][:, 0, 0, 0], [20, 22, 24])  # frames 0, 2, 4
    with pytest.raises(ValueError, match="data.frames x data.frame_stride"):
        NpyVideoFolder(str(tmp_path), frames=4, image_size=(4, 4), frame_stride=2)[0]


def test_a_grid_modality_missing_a_hook_fails_when_built():
    from mmjax.methods.grid_mae import GridMAE

    class NoMask(GridMAE):  # implements four of the five modality members
        grid = (2, 2)
        patch_dim = 4

        def patches(self, inputs):
            return inputs

        def eval_batches(self, data_config, split, batch_size):
            return []

    with pytest.raises(TypeError, match="make_mask"):
        NoMask(encoder=None, decoder=None)
