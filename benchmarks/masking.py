"""Time every mask generator under `jit` against a NumPy host version made per example.

The host versions follow the reference collators (BEiT, I-JEPA, SimMIM, VideoMAE, BERT,
...): a Python loop over the examples of a batch, NumPy inside. The ratio is the
figure of merit: generating masks on device must not be the bottleneck of a step.

    python benchmarks/masking.py              # batch 4096, 196 tokens
    python benchmarks/masking.py --batch 512 --only blockwise,multiblock
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

import mmjax.masking as M

N = 196  # 14 x 14 tokens


# ---- host versions: one example at a time, the way reference collators work ----


def np_random(rng, ratio=0.75):
    keep = int(N * (1 - ratio))
    ids_shuffle = np.argsort(rng.random(N))
    mask = np.ones(N, bool)
    mask[ids_shuffle[:keep]] = False
    return mask


def np_simmim(rng, cells=7, scale=2, ratio=0.6):
    count = math.ceil(cells * cells * ratio)
    mask = np.zeros(cells * cells, int)
    mask[rng.permutation(cells * cells)[:count]] = 1
    return mask.reshape(cells, cells).repeat(scale, 0).repeat(scale, 1).reshape(-1)


def np_blockwise(rng, size=14, budget=75, min_block=16, min_aspect=0.3):
    log_ar = (math.log(min_aspect), math.log(1 / min_aspect))
    mask = np.zeros((size, size), bool)
    count = 0
    while count < budget:
        remaining, delta = budget - count, 0
        for _ in range(10):
            area = min_block + (remaining - min_block) * rng.random()
            ar = math.exp(rng.uniform(*log_ar))
            h, w = round(math.sqrt(area * ar)), round(math.sqrt(area / ar))
            if h < size and w < size:
                top, left = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
                window = mask[top : top + h, left : left + w]
                new = h * w - window.sum()
                if 0 < new <= remaining:
                    window[...] = True
                    delta = new
                    break
        if delta == 0:
            break
        count += delta
    return mask.reshape(-1)


def _np_block_size(u, scale, aspect, size=14):
    s = scale[0] + u * (scale[1] - scale[0])
    ar = aspect[0] + u * (aspect[1] - aspect[0])
    keep = int(size * size * s)
    return min(round(math.sqrt(keep * ar)), size - 1), min(round(math.sqrt(keep / ar)), size - 1)


def np_multiblock_batch(rng, batch, size=14, num_targets=4, min_keep=10):
    """I-JEPA's collator: sizes per batch, positions per example, cut to the shortest context."""
    th, tw = _np_block_size(rng.random(), (0.15, 0.2), (0.75, 1.5))
    ch, cw = _np_block_size(rng.random(), (0.85, 1.0), (1.0, 1.0))
    contexts, targets = [], []
    for _ in range(batch):
        blocks, comps = [], []
        for _ in range(num_targets):
            top, left = rng.integers(0, size - th), rng.integers(0, size - tw)
            m = np.zeros((size, size), bool)
            m[top : top + th, left : left + tw] = True
            blocks.append(np.flatnonzero(m))
            comps.append(~m)
        targets.append(blocks)
        tries, timeout = 0, 20
        while True:
            top, left = rng.integers(0, size - ch), rng.integers(0, size - cw)
            m = np.zeros((size, size), bool)
            m[top : top + ch, left : left + cw] = True
            for comp in comps[: max(num_targets - tries, 0)]:
                m &= comp
            if m.sum() > min_keep:
                break
            timeout -= 1
            if timeout == 0:
                tries, timeout = tries + 1, 20
        contexts.append(np.flatnonzero(m))
    shortest = min(len(c) for c in contexts)
    return np.stack([c[:shortest] for c in contexts]), np.array(targets)


def np_tube(rng, frames=4, spatial=49, ratio=0.9):
    hidden = int(ratio * spatial)
    plane = np.hstack([np.zeros(spatial - hidden), np.ones(hidden)])
    rng.shuffle(plane)
    return np.tile(plane, (frames, 1)).reshape(-1)


def np_bert(rng, ids, vocab=30522, mask_id=103, rate=0.15):
    cand = np.flatnonzero(ids > 103)
    count = max(1, round(rate * len(cand)))
    chosen = rng.permutation(cand)[:count]
    out, labels = ids.copy(), np.full_like(ids, -100)
    labels[chosen] = ids[chosen]
    for pos in chosen:
        u = rng.random()
        if u < 0.8:
            out[pos] = mask_id
        elif u < 0.9:
            out[pos] = rng.integers(0, vocab)
    return out, labels


def np_span(rng, length=N, rate=0.15, p=0.2, max_span=10):
    probs = p * (1 - p) ** np.arange(max_span)
    probs /= probs.sum()
    budget, chosen, count = round(rate * length), np.zeros(length + 2, bool), 0
    for _ in range(length):
        if count >= budget:
            break
        span = min(rng.choice(max_span, p=probs) + 1, budget - count)
        start = rng.integers(0, length - span + 1)
        if not chosen[start : start + span + 2].any():  # no overlap, no touching (1-padded)
            chosen[start + 1 : start + span + 1] = True
            count += span
    return chosen[1:-1]


def np_attention(rng, att, ratio=0.75):
    hidden = N - int(N * (1 - ratio))
    mask = np.zeros(N, bool)
    mask[np.argsort(-att)[:hidden]] = True
    return mask


def np_time_freq(rng, time=28, freq=7):
    mask = np.zeros((time, freq), bool)
    mask[rng.permutation(time)[: int(0.2 * time)]] = True
    mask[:, rng.permutation(freq)[: int(0.2 * freq)]] = True
    return mask.reshape(-1)


def np_variate(rng, variates=4, patches=49, ratio=0.4):
    keep = int(patches * (1 - ratio))
    return np.stack([np.argsort(rng.random(patches)) >= keep for _ in range(variates)]).reshape(-1)


def np_remasker(rng, observed, ratio=0.5):
    obs = np.flatnonzero(observed)
    count = min(round(ratio * len(obs)), len(obs) - 1)
    remasked = np.zeros(N, bool)
    remasked[rng.permutation(obs)[:count]] = True
    return ~observed | remasked, remasked


def np_multimodal(rng, sizes=(98, 98), inputs=64, targets=64):
    offsets = np.cumsum((0,) + sizes[:-1])
    p_in = rng.dirichlet(np.ones(len(sizes)))
    n_in = np.minimum(np.round(p_in * inputs).astype(int), sizes)
    n_in[np.argmax(sizes - n_in)] += inputs - n_in.sum()
    chosen = [o + rng.permutation(s)[:k] for o, s, k in zip(offsets, sizes, n_in, strict=True)]
    input_ids = np.concatenate(chosen)
    free = np.setdiff1d(np.arange(sum(sizes)), input_ids)
    return input_ids, rng.permutation(free)[:targets]


def np_maskgit(rng):
    ratio = math.cos(math.pi / 2 * rng.random())
    count = min(max(math.ceil(ratio * N), 1), N)
    mask = np.zeros(N, bool)
    mask[rng.permutation(N)[:count]] = True
    return mask


def np_region(rng, centers, ratio=0.6):
    hidden = N - int(N * (1 - ratio))
    seed = centers[rng.integers(0, len(centers))]
    mask = np.zeros(N, bool)
    mask[np.argsort(((centers - seed) ** 2).sum(-1))[:hidden]] = True
    return mask


def np_disjoint(rng, views=2):
    perm = rng.permutation(N)
    k = N // views
    masks = np.ones((views, N), bool)
    for v in range(views):
        masks[v, perm[v * k : (v + 1) * k]] = False
    return masks


# ---- the catalogue: name -> (jax generator of (key) for a batch, host batch maker) ----


def catalogue(batch: int):
    rng = np.random.default_rng(0)
    ids_np = rng.integers(104, 30522, (batch, N))
    ids_np[:, 0], ids_np[:, -1] = 101, 102
    att_np = rng.random((batch, N)).astype(np.float32)
    obs_np = rng.random((batch, N)) > 0.2
    centers_np = rng.normal(size=(batch, N, 3)).astype(np.float32)
    ids, att, obs, centers = (jnp.asarray(a) for a in (ids_np, att_np, obs_np, centers_np))
    cand = M.mlm_candidates(ids, (0, 101, 102, 103))

    def loop(fn, *per_example):
        return lambda r: (
            [fn(r, *xs) for xs in zip(*per_example, strict=True)] if per_example else [fn(r) for _ in range(batch)]
        )

    # name -> (jax generator (key, *arrays), its arrays, host batch maker). Arrays are
    # arguments, not closure constants, so XLA does not fold them at compile time.
    return {
        "random (MAE)": (lambda k: M.random_mask(k, batch, N, 0.75), (), loop(np_random)),
        "simmim": (lambda k: M.simmim_mask(k, batch, (14, 14), 2, 0.6), (), loop(np_simmim)),
        "blockwise (BEiT)": (lambda k: M.blockwise_mask(k, batch, (14, 14), 75), (), loop(np_blockwise)),
        "multiblock (I-JEPA)": (
            lambda k: M.multiblock_masks(k, batch, (14, 14)),
            (),
            lambda r: np_multiblock_batch(r, batch),
        ),
        "tube (4x7x7)": (lambda k: M.tube_mask(k, batch, (4, 7, 7), 0.9), (), loop(np_tube)),
        "bert corruption": (
            lambda k, x: M.bert_corruption(k, x, vocab_size=30522, mask_token_id=103, special_ids=(0, 101, 102, 103)),
            (ids,),
            loop(np_bert, ids_np),
        ),
        "span (SpanBERT)": (lambda k, c: M.span_mask(k, c, 0.15), (cand,), loop(np_span)),
        "attention-guided": (
            lambda k, a: M.attention_guided_mask(k, a, 0.75),
            (att,),
            loop(np_attention, att_np),
        ),
        "time-frequency": (lambda k: M.time_frequency_mask(k, batch, (28, 7)), (), loop(np_time_freq)),
        "variate patches": (lambda k: M.variate_patch_mask(k, batch, 4, 49, 0.4), (), loop(np_variate)),
        "remasker": (lambda k, o: M.remasker_masks(k, o, 0.5), (obs,), loop(np_remasker, obs_np)),
        "4M budgets": (
            lambda k: M.multimodal_budget_masks(k, batch, (98, 98), 64, 64),
            (),
            loop(np_multimodal),
        ),
        "maskgit ratio": (
            lambda k: M.ratio_mask(k, N, M.sample_mask_ratio(jax.random.fold_in(k, 1), batch, "cosine")),
            (),
            loop(np_maskgit),
        ),
        "region (points)": (lambda k, c: M.region_mask(k, c, 0.6), (centers,), loop(np_region, centers_np)),
        "disjoint views": (lambda k: M.disjoint_view_masks(k, batch, N, 2), (), loop(np_disjoint)),
    }


def time_jax(fn, arrays, reps: int) -> float:
    fast = jax.jit(fn)
    jax.block_until_ready(fast(jax.random.key(0), *arrays))  # compile
    times = []
    for i in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(fast(jax.random.key(i + 1), *arrays))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def time_host(fn) -> float:
    start = time.perf_counter()
    fn(np.random.default_rng(1))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--reps", type=int, default=5, help="timed jit calls per generator (median)")
    parser.add_argument("--only", default="", help="comma-separated name prefixes")
    args = parser.parse_args()
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    print(f"batch {args.batch} x {N} tokens, {jax.devices()[0].platform} ({jax.device_count()} device)")
    print(f"| {'generator':<20} | {'jit ms':>8} | {'numpy loop ms':>13} | {'speed-up':>8} |")
    print(f"|{'-' * 22}|{'-' * 10}|{'-' * 15}|{'-' * 10}|")
    for name, (jax_fn, arrays, host_fn) in catalogue(args.batch).items():
        if wanted and not any(name.startswith(w) for w in wanted):
            continue
        t_jax, t_host = time_jax(jax_fn, arrays, args.reps), time_host(host_fn)
        print(f"| {name:<20} | {1e3 * t_jax:8.1f} | {1e3 * t_host:13.1f} | {t_host / t_jax:7.1f}x |", flush=True)


if __name__ == "__main__":
    main()
