import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.masking import MASKGIT_SCHEDULES, maskgit_schedule, ramp, ratio_mask, sample_mask_ratio
from tests.mask_properties import check_key_properties


def reference_schedule(t, kind, n):
    """MaskGIT's `mask_schedule.schedule`, written out in NumPy."""
    if kind == "cosine":
        r = np.cos(np.pi / 2 * t)
    elif kind == "linear":
        r = 1 - t
    elif kind in ("square", "cubic", "sqrt"):
        r = 1 - t ** {"square": 2, "cubic": 3, "sqrt": 0.5}[kind]
    elif kind == "log":
        r = -np.log2(t) / np.log2(n)
    else:
        r = 1 - np.exp2(-np.log2(n) * (1 - t))
    return np.clip(r, 1e-6, 1.0)


@pytest.mark.parametrize("kind", MASKGIT_SCHEDULES)
def test_schedules_match_the_reference_and_decrease(kind):
    t = np.linspace(0, 0.999, 200, dtype=np.float32)
    got = np.asarray(maskgit_schedule(t, kind, 256))
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(got, reference_schedule(t.astype(np.float64), kind, 256), rtol=1e-4, atol=1e-6)
    assert (np.diff(got) <= 1e-7).all()
    assert got[0] > 0.99 and got[-1] < 0.1


def test_named_values():
    assert float(maskgit_schedule(0.5, "cosine")) == pytest.approx(math.cos(math.pi / 4))
    assert float(maskgit_schedule(0.5, "square")) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="needs num_tokens"):
        maskgit_schedule(0.5, "log")
    with pytest.raises(ValueError, match="kind must be one of"):
        maskgit_schedule(0.5, "quartic")


def test_sampled_ratios_follow_the_cosine_law_with_a_floor():
    ratios = np.asarray(sample_mask_ratio(jax.random.key(0), 20000, "cosine"))
    # P(cos(pi/2 t) <= x) = 1 - (2/pi) acos(x) for t ~ U[0, 1).
    for x in (0.2, 0.5, 0.8):
        want = 1 - 2 / math.pi * math.acos(x)
        assert abs((ratios <= x).mean() - want) < 4 * math.sqrt(want * (1 - want) / 20000)
    floored = np.asarray(sample_mask_ratio(jax.random.key(0), 20000, "cosine", min_ratio=0.3))
    assert floored.min() == pytest.approx(0.3)
    np.testing.assert_allclose(floored, np.maximum(ratios, 0.3))


def test_ratio_mask_counts():
    ratios = jnp.array([0.0, 0.1, 0.5, 1.0])
    m = jax.jit(ratio_mask, static_argnums=1)(jax.random.key(1), 196, ratios)
    np.testing.assert_array_equal(np.asarray(m.mask).sum(1), [1, 20, 98, 196])


def test_ramp():
    steps = jnp.array([0, 50, 100, 200])
    np.testing.assert_allclose(np.asarray(ramp(steps, 100, 0.0, 0.5)), [0, 0.25, 0.5, 0.5])
    np.testing.assert_allclose(np.asarray(ramp(steps, 100, 1.0, 0.0, "cosine")), [1, 0.5, 0, 0], atol=1e-6)


def test_key_properties():
    check_key_properties(lambda k: ratio_mask(k, 32, sample_mask_ratio(k, 4, "cosine")))
