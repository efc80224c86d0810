"""What `tests/test_experiments.py` needs beside the files and their variants (`tests/experiment_variants.py`):
the runs a method reads from, an automatic shrink of any experiment config to a tiny size, the trainer's
config-time checks, and one loss-and-gradient.

The shrink is generic over the config tree: keys named `width`, `depth`, `heads`, `mlp_dim`, ... are made
small in whatever section they are, image sizes follow their patch size, and a short table per data kind
handles the input shapes (frames, mels, points, windows, tokens). It only ever changes the keys named in
`SHRUNK_KEYS` (plus `train`), so a test can assert that the method, its masks, targets and every other
structural choice are what the experiment file says.
"""

from __future__ import annotations

import copy
import functools
import math
import pathlib
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax import config as mmjax_config

# What a method reads from another run: the config field naming its workdir. Which run that is, per
# experiment file: `(upstream experiment file, its variant)`, shrunk (`H.write_finished_run`).
UPSTREAM_FIELD = {
    "beit": "beit.tokenizer_workdir",
    "distill": "distill.teacher_workdir",
    "finetune": "finetune.from_workdir",
    "givt": "givt.tokenizer_workdir",
    "mar": "mar.tokenizer_workdir",
    "maskgit": "maskgit.tokenizer_workdir",
}
UPSTREAM_RUN = {
    "beit_mnist": ("vq_mnist", None),
    "beit_vit_imagenet": ("vq_vit_imagenet", None),
    "continuous_digits": ("continuous_digits", "stage=vae"),
    "distill_mnist": ("mae_mnist", "runlocal"),
    "distill_vit_imagenet": ("mae_vit_imagenet", None),
    "finetune_docstrings": ("mlm_pydoc", None),
    "finetune_mnist": ("mae_mnist", "runlocal"),
    "finetune_series": ("patchtst_series", None),
    "givt_imagenet": ("givt_imagenet", "stage=vae"),
    "maskgit_digits": ("maskgit_digits", "stage=tokenizer"),
    "maskgit_imagenet": ("maskgit_imagenet", "stage=tokenizer"),
    "mar_imagenet": ("mar_imagenet", "stage=vae"),
}


def attach_upstream(config: ml_collections.ConfigDict, stem: str, workdir_of: Any) -> None:
    """Point the method's upstream field at `workdir_of(*UPSTREAM_RUN[stem])`, a run of the upstream experiment."""
    field = UPSTREAM_FIELD.get(config.method)
    if field is None:
        return
    assert stem in UPSTREAM_RUN, f"{stem}.py (method {config.method}) needs an entry in UPSTREAM_RUN"
    workdir = workdir_of(*UPSTREAM_RUN[stem])
    section, name = field.split(".")
    with config.unlocked():
        config[section][name] = workdir


# --- The shrink ---------------------------------------------------------------------------

TINY_WIDTH, TINY_HEADS, TINY_MLP = 16, 2, 32
GRID = 4  # tokens per image side (at most), the patch at most 2 px
PATCH = 2
WIDTH_KEYS = ("width", "decoder_width")
HEADS_KEYS = ("heads", "decoder_heads")
DEPTH_KEYS = ("depth", "decoder_depth", "head_depth")
MLP_KEYS = ("mlp_dim", "decoder_mlp_dim")
# Every config key the shrink may change, outside `train`: anything else must come out as it went in.
SHRUNK_KEYS = frozenset(
    {
        *WIDTH_KEYS,
        *HEADS_KEYS,
        *DEPTH_KEYS,
        *MLP_KEYS,
        "size",
        "code_dim",
        "vocab_size",
        "image_size",
        "patch_size",
        "tubelet_size",
        "frames",
        "digit_size",
        "num_mels",
        "num_samples",
        "num_points",
        "num_groups",
        "group_size",
        "pointnet_hidden",
        "window",
        "seq_len",
        "max_len",
        "max_predictions",
        "min_keep",  # I-JEPA's smallest context block, scaled with the number of tokens
        "min_block",  # BEiT's smallest mask block, likewise
        "blocks",  # LocalMIM's decoded encoder blocks, within the shrunk depth
        "regions",  # and their target regions, within the shrunk patch
    }
)
TEXT_VOCAB = 300  # a WordPiece vocabulary this small still trains on the bundled corpus in a second


def _sections(node: Any, where: str = "") -> Iterator[tuple[str, ml_collections.ConfigDict]]:
    """Every (nested) section of a config, with its dotted name."""
    if isinstance(node, ml_collections.ConfigDict):
        yield where, node
        for key in node.keys():
            yield from _sections(node[key], f"{where}.{key}" if where else key)


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _like(original: Any, value: tuple[int, ...]) -> Any:
    """`value` in the form of `original` (an int when it was one)."""
    return value[0] if isinstance(original, int) else tuple(value)


def _shrink_model_sizes(section: ml_collections.ConfigDict) -> None:
    if section.get("size") is not None and "width" in section:
        section.size = None  # explicit tiny sizes instead of base / large / huge
        tiny = {"width": TINY_WIDTH, "depth": 1, "heads": TINY_HEADS, "mlp_dim": TINY_MLP}
        for key, value in tiny.items():
            if key in section and section[key] is None:
                section[key] = value
    for key in WIDTH_KEYS:
        if section.get(key) is not None:
            section[key] = min(section[key], TINY_WIDTH)
    for key in HEADS_KEYS:
        if section.get(key) is not None:
            section[key] = min(section[key], TINY_HEADS)
    for key in DEPTH_KEYS:
        if isinstance(section.get(key), int):
            section[key] = min(section[key], 1)
    for key in MLP_KEYS:
        if section.get(key) is not None:
            section[key] = min(section[key], TINY_MLP)
    if isinstance(section.get("code_dim"), int):
        section.code_dim = min(section.code_dim, 4)
    if section.get("blocks") and section.get("regions"):  # LocalMIM on a one-block encoder of PATCH-px patches
        section.blocks, section.regions = (1,), (min(section.regions[0], PATCH),)


def _shrink_image_model(section: ml_collections.ConfigDict) -> tuple[int, int] | None:
    """A ViT-like section (`image_size` and `patch_size`): at most GRID x GRID patches of PATCH px."""
    if section.get("image_size") is None or section.get("patch_size") is None:
        return None
    image, patch = _pair(section.image_size), _pair(section.patch_size)
    new_patch = tuple(min(p, PATCH) for p in patch)
    grid = tuple(min(i // p, GRID) for i, p in zip(image, patch, strict=True))
    new_image = tuple(g * p for g, p in zip(grid, new_patch, strict=True))
    section.patch_size = _like(section.patch_size, new_patch)
    section.image_size = _like(section.image_size, new_image)
    return new_image


def _tokens(config: ml_collections.ConfigDict) -> int | None:
    model = config.get("model")
    if model is None or model.get("image_size") is None or model.get("patch_size") is None:
        return None
    return math.prod(i // p for i, p in zip(_pair(model.image_size), _pair(model.patch_size), strict=True))


def _shrink_data(config: ml_collections.ConfigDict, image: tuple[int, int] | None) -> None:
    """The input shapes of `config.data`, by data kind, to fit the shrunk model."""
    data = config.data
    kind = data.get("kind", "images")
    if kind == "images" and image is not None:
        data.image_size = _like(data.image_size, image)
    elif kind == "video":
        section, field = (config.videomae, "tubelet_size") if "videomae" in config else (config.gridjepa, "patch_size")
        t, h, w = section[field]
        tubelet = (min(t, 2), min(h, PATCH), min(w, PATCH))
        section[field] = tuple(tubelet)
        data.frames = min(data.frames, 2 * tubelet[0])
        data.image_size = (GRID * tubelet[1], GRID * tubelet[2])
        if "digit_size" in data:
            data.digit_size = min(data.digit_size, min(data.image_size))
    elif kind == "audio":
        section = config.audiomae if "audiomae" in config else config.gridjepa
        patch = tuple(min(p, PATCH) for p in section.patch_size)
        section.patch_size = patch
        frames, mels = GRID * patch[0], GRID * patch[1]
        data.num_mels = mels
        data.num_samples = data.n_fft + (frames - 1) * data.hop  # exactly `frames` spectrogram frames
    elif kind == "points":
        section = config.pointmae
        section.num_groups = min(section.num_groups, 8)
        section.group_size = min(section.group_size, 8)
        section.pointnet_hidden = tuple(min(h, 8 * (i + 1)) for i, h in enumerate(section.pointnet_hidden))
        data.num_points = min(data.num_points, 64)
    elif kind == "series":
        data.window = min(data.window, 4 * config[config.method].patch_len)  # patchtst, timesbert
    elif kind == "text":
        data.seq_len = min(data.seq_len, 16)
        data.vocab_size = min(data.vocab_size, TEXT_VOCAB)
        config.model.max_len = min(config.model.max_len, 32)
        if config.mlm.max_predictions:
            config.mlm.max_predictions = min(config.mlm.max_predictions, data.seq_len)
    elif kind == "series_classes":
        data.window = min(data.window, 32)  # the shrunk PatchTST's window (4 patches of 8)
    elif kind == "text_classes":
        data.seq_len = min(data.seq_len, 16)  # within the shrunk MLM's positions


def _scale_counts(config: ml_collections.ConfigDict, tokens_before: int | None) -> None:
    """Per-method counts of tokens that must shrink with the grid (the small per-method table)."""
    tokens_after = _tokens(config)
    if tokens_before is None or tokens_after is None:
        return
    scale = tokens_after / tokens_before
    if "jepa" in config and config.jepa.get("min_keep"):
        config.jepa.min_keep = max(1, math.floor(config.jepa.min_keep * scale))
    if "beit" in config and config.beit.get("min_block"):
        config.beit.min_block = max(1, math.floor(config.beit.min_block * scale))


def smallest_batch(config: ml_collections.ConfigDict, at_least: int = 2) -> int:
    """The smallest global batch >= `at_least` that the trainer's mesh splits evenly."""
    from mmjax.train.mesh import make_mesh

    mesh = make_mesh(config.mesh.to_dict())
    devices = mesh.shape["data"] * mesh.shape["fsdp"] * jax.process_count()
    return math.lcm(at_least, devices)


def shrink(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A tiny copy of an experiment config: same method, masks, targets and structure; one train step."""
    config = copy.deepcopy(config)
    with config.unlocked():
        tokens_before = _tokens(config)
        image = None
        for _, section in list(_sections(config)):
            _shrink_model_sizes(section)
            size = _shrink_image_model(section)
            image = image or size
        # Vocabularies of codes and classes of tokens (not a text tokenizer's, see _shrink_data).
        for where, section in _sections(config):
            if where != "data" and isinstance(section.get("vocab_size"), int):
                section.vocab_size = min(section.vocab_size, 16)
        if image is None and config.get("method") == "finetune":  # the upstream encoder's, shrunk the same way
            image = (GRID * PATCH, GRID * PATCH)
        if "data" in config:
            _shrink_data(config, image)
        _scale_counts(config, tokens_before)
        config.train.update(steps=1, warmup_steps=0, log_every=1, checkpoint_every=1)
        config.train.batch_size = smallest_batch(config)
    return config


@functools.cache
def _resolved(path: pathlib.Path, arg: str | None) -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
    config = mmjax_config.load_experiment(path, arg)
    return config, shrink(config)


def resolved(path: pathlib.Path, arg: str | None = None) -> ml_collections.ConfigDict:
    """`load_experiment(path, arg)`, resolved once per session (a copy each call)."""
    return copy.deepcopy(_resolved(path, arg)[0])


def shrunk(path: pathlib.Path, arg: str | None = None) -> ml_collections.ConfigDict:
    """`shrink(load_experiment(path, arg))`, made once per session (a copy each call)."""
    return copy.deepcopy(_resolved(path, arg)[1])


def flat(config: Any, prefix: str = "") -> dict[str, Any]:
    """`{"a.b.c": leaf}` of a config (lists as tuples)."""
    out: dict[str, Any] = {}
    items = config.items() if hasattr(config, "items") else []
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, ml_collections.ConfigDict | dict):
            out.update(flat(value, name + "."))
        else:
            out[name] = tuple(value) if isinstance(value, list) else value
    return out


def structural_changes(before: ml_collections.ConfigDict, after: ml_collections.ConfigDict) -> list[str]:
    """Leaves the shrink changed that it may not (anything outside `train` and `SHRUNK_KEYS`)."""
    a, b = flat(before), flat(after)
    changed = []
    for name in sorted(set(a) | set(b)):
        if name.startswith("train.") or name.rsplit(".", 1)[-1] in SHRUNK_KEYS:
            continue
        if a.get(name, "<absent>") != b.get(name, "<absent>"):
            changed.append(f"{name}: {a.get(name, '<absent>')!r} -> {b.get(name, '<absent>')!r}")
    return changed


def _structure(value: Any) -> Any:
    """A leaf as far as it is a structural choice: strings, flags and None as they are; a number only as
    its type and whether it is zero (0 often means "off"); a tuple as its length and items so."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return (type(value).__name__, value == 0)
    if isinstance(value, tuple | list):
        return tuple(_structure(v) for v in value)
    return repr(value)


def build_signature(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """What decides the structure of the built method and its loss: the shrunk config's choices, without
    runtime knobs, other runs' workdirs, schedule lengths and where the data come from.

    Variants of a file with the same signature differ only in numbers (a rate, a step count, a
    table's columns) or paths; one of them is built, every one resolves and validates.
    """
    skip_sections = ("train.", "eval.", "mesh.", "sharding.", "distributed.", "seed")
    skip_data = ("source", "path", "root", "train_path", "test_path", "tokenizer")
    return {
        k: _structure(v)
        for k, v in flat(config).items()
        if not k.startswith(skip_sections)
        and not k.endswith(("workdir", "seed"))
        and not (k.startswith("data.") and k[len("data.") :] in skip_data)
    }


def build(config: ml_collections.ConfigDict) -> Any:
    """The method, built as the trainer builds it (reading the configs of the runs it declares)."""
    from mmjax.train import loop

    return loop.build_method(config)


def load_frozen(method: Any, params: Any) -> Any:
    """`params` with the parts the method takes from other runs loaded, as the trainer does on a fresh run."""
    from mmjax.train import loop

    if hasattr(loop, "load_frozen"):
        return loop.load_frozen(method, params)
    return method.load_frozen(params) if hasattr(method, "load_frozen") else params


def trainer_checks(config: ml_collections.ConfigDict) -> Any:
    """What `mmjax.train.train` checks before it compiles, up to the parameters; returns the built method.

    The knobs (`check_runtime_config`), the JSON form written to `config.json`, the method, the mesh
    and batch split, and the parameter shardings from the method's logical axes. With the
    parameters, `optimizer_check` does the rest.
    """
    from mmjax.train import loop
    from mmjax.train.mesh import make_mesh, param_shardings
    from mmjax.train.validate import check_batch_divides, check_runtime_config

    check_runtime_config(config)
    loop.config_as_dict(config)
    method = build(config)
    mesh = make_mesh(config.mesh.to_dict())
    check_batch_divides(config.train.batch_size, mesh.shape["data"] * mesh.shape["fsdp"], jax.process_count())
    param_shardings(method.param_axes(), mesh, config.sharding.rules)
    return method


def optimizer_check(config: ml_collections.ConfigDict, method: Any, params: Any) -> None:
    """The trainer's optimizer over these parameters, with the method's frozen leaves, initializes."""
    from mmjax.train.optimizer import make_optimizer

    trainable = method.trainable(params) if hasattr(method, "trainable") else None
    optimizer, _ = make_optimizer(config.train, params, trainable)
    jax.eval_shape(optimizer.init, params)


def write_finished_run(config: ml_collections.ConfigDict, workdir: str, step: int = 2) -> None:
    """A finished run of `config` in `workdir`, as the trainer leaves one: `config.json` and a checkpoint
    of a fresh state at `step`, written by the trainer's own checkpoint functions.

    Not trained: `mmjax.train.train` compiles its init and update step at full optimization, some
    25 s of CPU for even a tiny model, and six runs are needed. What another run reads from it (its
    config, the tree, shapes and dtypes of its parameters) is the same.
    """
    from mmjax.train import checkpoint, loop
    from mmjax.train.optimizer import make_optimizer
    from mmjax.train.state import TrainState

    method = build(config)
    init_key, run_key = jax.random.split(jax.random.key(config.seed))
    params = load_frozen(method, init_params(method, init_key, example_batch(config, 2)))
    trainable = method.trainable(params) if hasattr(method, "trainable") else None
    optimizer, _ = make_optimizer(config.train, params, trainable)
    state = TrainState(
        step=jnp.asarray(step, jnp.int32),
        params=params,
        opt_state=jax.jit(optimizer.init)(params),
        rng=jax.random.key_data(run_key),
        skipped=jnp.zeros((), jnp.int32),
    )
    saved = loop.config_as_dict(config)
    manager = checkpoint.checkpoint_manager(workdir, async_save=False)
    try:
        checkpoint.save(manager, step, state, None, saved)
        manager.wait_until_finished()
    finally:
        manager.close()
    checkpoint.write_config(workdir, saved)


def example_batch(config: ml_collections.ConfigDict, batch_size: int) -> dict[str, jax.Array]:
    """The data kind's example batch, with values where its zeros would hide a broken loss.

    The kind's `example_batch` (all zeros, prepared) gives the entries, shapes and dtypes. Zeros are
    a degenerate input: a constant image makes every norm-pix target zero and every code the same;
    text of zeros is all padding, so no token can be chosen; an all-False `observed` leaves no cell
    to learn from. So images, clips, spectrograms, points and series get random values of the same
    spec (through the kind's `prepare`), text two packed rows of its corpus, tables a random table
    with 70% of the cells observed.
    """
    from mmjax.data.kinds import data_kind

    kind = data_kind(config.data)
    batch = kind.example_batch(config.data, batch_size)
    rng = np.random.default_rng(0)
    if kind.name == "text":
        from mmjax.data.text import packed_split

        rows = packed_split(config.data, "train")
        batch = {k: jnp.asarray(rows[k][:batch_size]) for k in batch}
    elif kind.name == "tables":
        shape = batch["values"].shape
        batch = {
            "values": jnp.asarray(rng.normal(size=shape), jnp.float32),
            "observed": jnp.asarray(rng.random(shape) < 0.7),
        }
    elif kind.name in ("images", "video", "audio", "points", "series"):
        spec = kind.batch_spec(config.data, batch_size)
        host = {}
        for name, s in spec.items():
            if s.dtype == jnp.uint8:
                host[name] = rng.integers(0, 256, s.shape).astype(np.uint8)
            elif jnp.issubdtype(s.dtype, jnp.floating):
                host[name] = rng.normal(size=s.shape).astype(s.dtype)
            else:
                host[name] = np.zeros(s.shape, s.dtype)
        batch = kind.prepare({k: jnp.asarray(v) for k, v in host.items()}, config.data)
    return batch


def init_params(method: Any, key: jax.Array, batch: dict[str, jax.Array]) -> Any:
    """`method.init(key, batch)`, jitted as the trainer's init is (one compile, at the tests' cheap XLA flags)."""
    return jax.jit(method.init)(key, batch)


def value_and_grad(method: Any, params: Any, batch: dict[str, jax.Array], key: jax.Array) -> tuple[Any, Any]:
    """`(loss, grads)` of one `jax.value_and_grad(method.loss)` with `train=True`, jitted as the trainer's step is."""

    def loss(p, b, k):
        return method.loss(p, b, k, True)

    grad_fn = jax.value_and_grad(loss, has_aux=True)
    (value, _), grads = jax.jit(grad_fn)(params, batch, key)
    return value, grads


def gradient_problems(method: Any, params: Any, grads: Any) -> list[str]:
    """Non-finite gradient leaves, or a gradient that is zero on every trainable leaf (checked on the host)."""
    trainable = method.trainable(params) if hasattr(method, "trainable") else jax.tree.map(lambda _: True, params)
    leaves = jax.tree_util.tree_flatten_with_path(jax.device_get(grads))[0]
    flags = jax.tree.leaves(trainable)
    problems = [
        f"non-finite gradient at {jax.tree_util.keystr(path)}"
        for path, g in leaves
        if not np.isfinite(np.asarray(g, np.float32)).all()
    ]
    nonzero = [bool(np.any(np.asarray(g) != 0)) for (_, g), t in zip(leaves, flags, strict=True) if t]
    if not any(nonzero):
        problems.append(f"the gradient is zero on all {len(nonzero)} trainable leaves")
    return problems
