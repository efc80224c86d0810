"""Grid I-JEPA (A-JEPA on spectrograms, V-JEPA-style on tubelets): its masks, its encoder and its training."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmjax.config import ConfigError
from mmjax.masking import MASKS, Layout, draw_mask, mask_as_blocks, multiblock_masks, random_mask, tube_blocks
from mmjax.methods.grid_jepa import GridJEPA
from mmjax.models.config import TransformerConfig
from mmjax.models.token_mae import TokenEncoder
from mmjax.train.optimizer import make_optimizer
from tests.helpers import load_experiment


def tiny(name: str, arg: str | None = None):
    config = load_experiment(name, arg)
    config.model.update(width=24, depth=1, heads=2, mlp_dim=48)
    config.predictor.update(width=24, depth=1, heads=2, mlp_dim=48)
    config.data.update(num_train=64, num_test=32)
    config.train.update(batch_size=8, steps=12, warmup_steps=2, lr=3e-3)
    return config


def random_batch(method: GridJEPA, config, batch_size: int = 4):
    from mmjax.data.kinds import data_kind

    example = data_kind(config.data).example_batch(config.data, batch_size)
    return {k: jax.random.normal(jax.random.key(7), v.shape) for k, v in example.items()}


def test_tube_blocks_repeat_every_spatial_block_in_every_time_slot():
    grid, frames = (5, 6), 3
    spatial = multiblock_masks(jax.random.key(3), 4, grid, num_targets=2, min_keep=4)
    lifted = tube_blocks(spatial, frames)
    plane = grid[0] * grid[1]
    for b in range(4):
        real = np.asarray(spatial.context_ids[b])[np.asarray(spatial.context_valid[b])]
        want = sorted(t * plane + i for t in range(frames) for i in real)
        got = np.asarray(lifted.context_ids[b])[np.asarray(lifted.context_valid[b])]
        assert list(got) == want  # the real ones first, in increasing order
        assert not np.asarray(lifted.context_valid[b])[len(want) :].any()
        for m in range(2):
            blk = np.asarray(spatial.target_ids[b, m])[np.asarray(spatial.target_valid[b, m])]
            got = np.asarray(lifted.target_ids[b, m])[np.asarray(lifted.target_valid[b, m])]
            assert list(got) == sorted(t * plane + i for t in range(frames) for i in blk)
            mask = np.asarray(lifted.target_mask[b, m]).reshape(frames, plane)
            assert (mask == np.asarray(spatial.target_mask[b, m])[None]).all()
        hidden_context = np.asarray(lifted.context_mask[b]).reshape(frames, plane)
        assert (hidden_context == np.asarray(spatial.context_mask[b])[None]).all()
    np.testing.assert_array_equal(lifted.context_counts, spatial.context_counts * frames)


def test_mask_as_blocks_makes_the_visible_tokens_the_context_and_the_hidden_ones_one_target_set():
    mask = random_mask(jax.random.key(1), 3, 20, 0.75)
    blocks = mask_as_blocks(mask)
    hidden = np.asarray(mask.mask)
    for b in range(3):
        assert list(np.asarray(blocks.context_ids[b])) == list(np.flatnonzero(~hidden[b]))
        assert list(np.asarray(blocks.target_ids[b, 0])) == list(np.flatnonzero(hidden[b]))
    assert blocks.context_valid.all() and blocks.target_valid.all()
    assert blocks.context_ids.shape == (3, 5) and blocks.target_ids.shape == (3, 1, 15)
    with pytest.raises(ValueError, match="fixed-count"):
        mask_as_blocks(type(mask)(mask=mask.mask))


def _is_time_frequency(hidden: np.ndarray) -> bool:
    """The visible tokens are a product set: the visible rows times the visible columns."""
    rows, cols = ~hidden.all(axis=1), ~hidden.all(axis=0)
    return bool((~hidden == np.outer(rows, cols)).all())


@pytest.mark.parametrize("step, hard_share", [(0, 0.0), (50, 0.5), (100, 1.0), (400, 1.0)])
def test_curriculum_kind_moves_from_random_to_time_frequency_masks(step, hard_share):
    # ramp_share 0.5 of 200 steps: the chance of a time-frequency mask is step / 100, clipped to 1.
    chosen = MASKS.choose("curriculum", time_ratio=0.5, freq_ratio=0.5, ramp_share=0.5)
    layout = Layout("grid", (8, 6), step=jnp.asarray(step), total_steps=200)
    mask = draw_mask(chosen, jax.random.key(step), 400, layout, 0.75, fixed_count=True)
    hidden = np.asarray(mask.mask).reshape(400, 8, 6)
    assert (hidden.reshape(400, -1).sum(1) == 48 - 4 * 3).all()  # both kinds hide 4 of 8 rows, 3 of 6 columns
    share = np.mean([_is_time_frequency(h) for h in hidden])
    assert abs(share - hard_share) < 0.08  # a random mask of 36 of 48 is (almost) never a product set


def test_token_encoder_key_lengths_ignore_the_padding_rows():
    encoder = TokenEncoder(width=16, transformer=TransformerConfig(depth=2, heads=2, mlp_dim=32), cls_token=False)
    tokens = jax.random.normal(jax.random.key(0), (2, 7, 16))
    params = encoder.init(jax.random.key(1), tokens)
    padded = tokens.at[:, 4:].set(100.0)
    out, _ = encoder.apply(params, padded, key_lengths=jnp.array([4, 4]))
    alone, _ = encoder.apply(params, tokens[:, :4])
    np.testing.assert_allclose(out[:, :4], alone, atol=1e-5)


@pytest.mark.parametrize(
    "name, arg, grid, context, targets",
    [
        ("ajepa_synth", None, (16, 8), 32, (1, 96)),  # curriculum: 8 x 4 visible of 16 x 8
        ("vjepa_moving_digits", "masking=tube", (4, 8, 8), 4 * 16, (1, 4 * 48)),  # tube at 75% of 8 x 8
    ],
)
def test_experiments_build_the_grid_and_mask_shapes_they_document(name, arg, grid, context, targets):
    config = tiny(name, arg)
    method = GridJEPA.from_config(config)
    assert method.grid == grid
    masks = method.make_masks(jax.random.key(0), 3, jnp.zeros(()))
    assert masks.context_ids.shape == (3, context) and masks.target_ids.shape[1:] == targets


def test_vjepa_blocks_span_every_frame_and_features_are_the_target_encoder_mean():
    config = tiny("vjepa_moving_digits")
    method = GridJEPA.from_config(config)
    masks = method.make_masks(jax.random.key(2), 3)
    target = np.asarray(masks.target_mask).reshape(3, -1, 4, 64)
    assert (target == target[:, :, :1]).all() and target.any()  # the same spatial block in all 4 time slots
    batch = random_batch(method, config)
    params = method.init(jax.random.key(0), batch)
    feats = method.features(params, batch["video"])
    tokens = method.model.apply({"params": params}, method.patches(batch["video"]), method="features")
    np.testing.assert_allclose(feats, tokens.mean(axis=1), atol=1e-6)
    assert feats.shape == (4, config.model.width)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda c: c.model.update(cls_token=True), "model.cls_token"),
        (lambda c: c.gridjepa.update(patch_size=(4, 4)), "gridjepa.patch_size"),
        (lambda c: c.data.update(kind="images"), "data.kind"),
        (lambda c: c.predictor.update(width=2, heads=1), "predictor.width"),
    ],
)
def test_bad_configs_are_named(edit, match):
    config = tiny("vjepa_moving_digits")
    edit(config)
    with pytest.raises((ConfigError, ValueError), match=match):
        GridJEPA.from_config(config)


def test_a_few_steps_lower_the_loss_move_the_ema_and_count_steps():
    config = tiny("ajepa_synth")
    method = GridJEPA.from_config(config)
    batch = random_batch(method, config, 8)
    params = method.init(jax.random.key(0), batch)
    optimizer, _ = make_optimizer(config.train, params, method.trainable(params))
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, key, i):
        (loss, _), grads = jax.value_and_grad(method.loss, has_aux=True)(params, batch, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return method.after_step(optax.apply_updates(params, updates), None, i), opt_state, loss

    start, losses = params, []
    for i in range(12):
        params, opt_state, loss = step(params, opt_state, jax.random.key(i), jnp.int32(i))
        losses.append(float(loss))
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    assert float(params["steps_seen"]) == 12.0 and float(start["steps_seen"]) == 0.0
    moved = jax.tree.leaves(
        jax.tree.map(lambda a, b: jnp.abs(a - b).max(), params["target_encoder"], start["target_encoder"])
    )
    assert max(float(m) for m in moved) > 0  # the EMA follows the trained context encoder
