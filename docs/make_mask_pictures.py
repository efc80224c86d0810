"""Draw docs/masks/<name>.png, one picture per mask generator (needs matplotlib and scikit-learn).

PYTHONPATH=. python docs/make_mask_pictures.py
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import mmjax.masking as M

OUT = pathlib.Path(__file__).resolve().parent / "masks"
KEY = jax.random.key(0)


def photo(size: int = 224) -> np.ndarray:
    """scikit-learn's bundled sample photo, center-cropped and resized to `size` (no download)."""
    from sklearn.datasets import load_sample_image

    img = load_sample_image("china.jpg")
    side = min(img.shape[:2])
    top, left = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
    img = img[top : top + side, left : left + side]
    idx = (np.arange(size) * side / size).astype(int)
    return img[idx][:, idx].astype(np.float32) / 255.0


def spectrogram(time: int = 128, freq: int = 64) -> np.ndarray:
    """A synthetic log-spectrogram: a rising chirp with harmonics over noise, time along x."""
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, time)[None]
    f = np.arange(freq)[::-1, None]  # low frequencies at the bottom
    spec = 0.15 * rng.random((freq, time))
    for h in (1, 2, 3):
        spec += np.exp(-((f - h * (6 + 10 * t)) ** 2) / 4.0) / h
    spec = spec / spec.max()
    return np.stack([spec**0.7, spec**1.5, 0.4 + 0.6 * spec], -1).astype(np.float32)


def draw(name: str, masks, grid, images=None, titles=None) -> None:
    masks = np.asarray(masks)
    M.plot_masks(masks, grid, images, titles=titles, path=str(OUT / f"{name}.png"), panel_size=2.2, dpi=80)


def to_time_x(mask, time, freq):
    """Token order is [T, F] (time-major); draw time along x and low frequencies at the bottom."""
    m = np.asarray(mask).reshape(-1, time, freq).transpose(0, 2, 1)[:, ::-1]
    return m.reshape(m.shape[0], -1)


def blob(batch: int, size: int = 14, center=(6.0, 7.0), width: float = 3.0) -> jax.Array:
    yy, xx = np.mgrid[:size, :size]
    score = np.exp(-((yy - center[0]) ** 2 + (xx - center[1]) ** 2) / (2 * width**2)).reshape(1, -1)
    return jnp.asarray(np.repeat(score, batch, 0), jnp.float32)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    img = photo()
    imgs4 = np.repeat(img[None], 4, 0)

    # Dense images.
    draw("random", M.random_mask(KEY, 4, 196, 0.75).mask, (14, 14), imgs4)
    draw("simmim", M.simmim_mask(KEY, 4, (56, 56), 8, 0.6).mask, (56, 56), imgs4)
    draw("blockwise", M.blockwise_mask(KEY, 4, (14, 14), 75).mask, (14, 14), imgs4)
    mb = M.multiblock_masks(KEY, 2, (14, 14), allow_overlap=False)
    context_full = np.asarray(mb.context_mask[0])
    panels = [~context_full[None]] + [~np.asarray(mb.target_mask[0, t])[None] for t in range(4)]
    draw(
        "multiblock",
        np.concatenate(panels),
        (14, 14),
        np.repeat(img[None], 5, 0),
        ["context (cut)", "target 1", "target 2", "target 3", "target 4"],
    )

    # Video: four frames of one clip.
    frames = [f"t={t}" for t in range(4)]
    for name, mask in [
        ("tube", M.tube_mask(KEY, 1, (4, 14, 14), 0.75).mask),
        ("frame", M.frame_mask(KEY, 1, (4, 14, 14), 0.5).mask),
        ("spacetime", M.spacetime_mask(KEY, 1, (4, 14, 14), 0.75).mask),
        ("running_cell", M.running_cell_mask(KEY, 1, (4, 14, 14), (2, 2), 0.5).mask),
    ]:
        draw(name, np.asarray(mask).reshape(4, 196), (14, 14), imgs4, frames)

    # Text: 4 sequences of 64 tokens, drawn 4 x 16; padding from token 52 on in the last two.
    ids = jnp.where(jnp.arange(64)[None] < jnp.array([[64], [64], [52], [52]]), 7, 0)
    cand = M.mlm_candidates(ids, (0,))
    counts = jnp.array([1000.0] * 7 + [1.0])
    rare = jnp.where(jax.random.bernoulli(jax.random.key(1), 0.2, ids.shape) & (ids > 0), 7, 3)
    # White tokens, pale blue padding, rare tokens (for the weighted picture) in yellow.
    cell = np.where(np.asarray(ids)[..., None] > 0, 1.0, np.array([0.75, 0.85, 1.0]))
    token_cells = cell.reshape(4, 4, 16, 3).repeat(8, 1).repeat(8, 2).astype(np.float32)
    for name, mask in [
        ("bert", M.bert_mask(KEY, cand, 0.15).mask),
        ("span", M.span_mask(KEY, cand, 0.3).mask),
        ("ngram", M.ngram_mask(KEY, cand, 0.3).mask),
        ("frequency_weighted", M.frequency_weighted_mask(KEY, rare, cand, counts, 0.15, alpha=1.0).mask),
    ]:
        draw(name, mask, (4, 16), token_cells, titles=[f"sequence {i}" for i in range(4)])

    # Guided: a saliency blob stands in for attention and for the prior.
    att = blob(4)
    draw(
        "attention_guided",
        np.concatenate(
            [
                np.asarray(M.attention_guided_mask(KEY, att[:1], 0.5, mode=mode, random_fraction=rf).mask)
                for mode, rf in [("high", 0.0), ("low", 0.0), ("hint", 0.0), ("high", 0.5)]
            ]
        ),
        (14, 14),
        imgs4,
        ["high", "low", "hint", "high + 50% random"],
    )
    draw(
        "hard_patch",
        np.concatenate([np.asarray(M.hard_patch_mask(KEY, att[:1], 0.5, s, 300).mask) for s in (0, 100, 200, 300)]),
        (14, 14),
        imgs4,
        [f"step {s}/300" for s in (0, 100, 200, 300)],
    )
    draw(
        "prior_guided",
        np.concatenate(
            [np.asarray(M.prior_guided_mask(KEY, 8 * att[:1], 0.5, temperature=t).mask) for t in (8, 2, 1, 0.25)]
        ),
        (14, 14),
        imgs4,
        [f"T = {t}" for t in (8, 2, 1, 0.25)],
    )
    easy = M.random_mask(jax.random.key(2), 64, 196, 0.75)
    hard = M.blockwise_mask(jax.random.key(3), 64, (14, 14), 147)
    picks = [
        np.asarray(M.curriculum_mask(jax.random.key(4), s, 300, easy, hard).mask)[s // 100] for s in (0, 100, 200, 300)
    ]
    draw("curriculum", np.stack(picks), (14, 14), imgs4, [f"step {s}/300" for s in (0, 100, 200, 300)])

    # Signals.
    spec = np.repeat(spectrogram()[None], 4, 0)
    draw(
        "time_frequency",
        to_time_x(M.time_frequency_mask(KEY, 4, (32, 16), 0.2, 0.2).mask, 32, 16),
        (16, 32),
        spec,
    )
    draw(
        "spec_band",
        to_time_x(M.spec_band_mask(KEY, 4, (32, 16), max_time_width=6, max_freq_width=3).mask, 32, 16),
        (16, 32),
        spec,
    )
    low = M.frequency_mask(KEY, 1, (224, 224), radius=16, low_pass_prob=1.0)
    high = M.frequency_mask(KEY, 1, (224, 224), radius=16, low_pass_prob=0.0)
    fm = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), low, high)
    filtered = np.clip(np.asarray(M.apply_frequency_mask(jnp.asarray(np.repeat(img[None], 2, 0)), fm)), 0, 1)
    filtered[1] = np.clip(filtered[1] * 3 + 0.5, 0, 1)  # high-pass: brighten to be visible
    spectra = np.asarray(fm.removed)[:, ::4, ::4]
    draw(
        "frequency",
        np.concatenate([spectra.reshape(2, -1), np.zeros((2, 56 * 56), bool)]),
        (56, 56),
        np.concatenate([np.ones((2, 224, 224, 3), np.float32), filtered]),
        ["low-pass: removed", "high-pass: removed", "low-pass image", "high-pass image (x3)"],
    )
    draw(
        "variate_patch",
        M.variate_patch_mask(KEY, 2, 6, 24, 0.4).mask,
        (6, 24),
        titles=["independent", "independent"],
    )

    # Point patches, drawn as the Voronoi cells of the patch centers over the image plane.
    pts = jax.random.uniform(jax.random.key(5), (1, 2048, 2))
    groups = M.group_points(pts, 64, 32)
    yy, xx = np.mgrid[:56, :56] / 56.0
    pix = np.stack([yy.ravel(), xx.ravel()], -1)
    nearest = np.argmin(((pix[:, None] - np.asarray(groups.centers[0])[None]) ** 2).sum(-1), 1)
    point_masks = [
        M.random_mask(KEY, 1, 64, 0.6).mask,
        M.region_mask(KEY, groups.centers, 0.6).mask,
        M.region_mask(KEY, groups.centers, 0.6, num_regions=3).mask,
    ]
    draw(
        "region",
        np.stack([np.asarray(m)[0][nearest] for m in point_masks]),
        (56, 56),
        np.repeat(img[None], 3, 0),
        ["random 60%", "1 region", "3 regions"],
    )

    # Tables: 12 rows x 10 features, 25% naturally missing.
    observed = jax.random.bernoulli(jax.random.key(6), 0.75, (12, 10))
    rm = M.remasker_masks(KEY, observed, 0.5)
    draw(
        "remasker",
        np.stack([np.asarray(x).reshape(-1) for x in (rm.missing, rm.remasked, rm.hidden)]),
        (12, 10),
        titles=["missing", "re-masked (loss)", "hidden from encoder"],
    )

    # Schedules: MaskGIT training masks at four points of the cosine schedule.
    ts = jnp.array([0.1, 0.4, 0.7, 0.9])
    ratios = M.maskgit_schedule(ts, "cosine")
    draw(
        "maskgit",
        M.ratio_mask(KEY, 196, ratios).mask,
        (14, 14),
        imgs4,
        [f"t={float(t):.1f}: {float(r):.0%}" for t, r in zip(ts, ratios, strict=True)],
    )

    # 4M: two 14x14 modalities (the photo and its grey version); hidden = not an input / not a target.
    mm = M.multimodal_budget_masks(KEY, 1, (196, 196), 64, 64)
    grey = np.repeat(img.mean(-1, keepdims=True), 3, -1)
    inp, tgt = np.asarray(mm.input_mask[0]), np.asarray(mm.target_mask[0])
    draw(
        "multimodal",
        np.stack([~inp[:196], ~inp[196:], ~tgt[:196], ~tgt[196:]]),
        (14, 14),
        np.stack([img, grey, img, grey]),
        ["RGB inputs", "grey inputs", "RGB targets", "grey targets"],
    )
    dv = M.disjoint_view_masks(KEY, 1, 196, 3)
    draw(
        "disjoint_views",
        np.asarray(dv.mask)[:, 0],
        (14, 14),
        np.repeat(img[None], 3, 0),
        ["view 1", "view 2", "view 3"],
    )

    total = sum(p.stat().st_size for p in OUT.glob("*.png"))
    print(f"wrote {len(list(OUT.glob('*.png')))} pictures to {OUT}, {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
