"""Every method's export reproduces the features it reports: one experiment file per method, shrunk, random
parameters, exported as StableHLO (a ViT `encoder` hook, or `features` over the method's prepared input) and
run by the loader that needs no model code."""

from __future__ import annotations

import functools
import tempfile

import jax
import numpy as np
import pytest

from mmjax.export import load_feature_extractor, save_stablehlo
from mmjax.export.features import export_method_features, feature_input, flat_leaves
from mmjax.export.stablehlo import write_stablehlo
from mmjax.export.workdir import encoder_only
from mmjax.methods.common import has_feature_function, has_image_encoder
from tests import experiment_helpers as H
from tests import experiment_variants as V

pytest.importorskip("safetensors")


def _first_file_per_method() -> dict[str, str]:
    """method -> the first experiment file (by name) that trains it."""
    chosen: dict[str, str] = {}
    for path in V.experiment_files():
        chosen.setdefault(H.resolved(path).method, path.stem)
    return chosen


FILES = _first_file_per_method()
# Every method has a ViT `encoder` hook or the probes' `features` (`test_every_method_has_something_to_export`).


@functools.cache
def upstream(name: str, arg: str | None) -> str:
    """A finished tiny run of `experiments/<name>.py:<arg>` (made once per session)."""
    workdir = tempfile.mkdtemp(prefix=f"upstream-{name}-")
    config = H.shrunk(V.EXPERIMENTS / f"{name}.py", arg)
    with config.unlocked():
        config.train.update(steps=2, checkpoint_every=2, log_every=2)
    H.write_finished_run(config, workdir, step=2)
    return workdir


def built(stem: str):
    config = H.shrunk(V.EXPERIMENTS / f"{stem}.py")
    H.attach_upstream(config, stem, upstream)
    method = H.build(config)
    batch = H.example_batch(config, 2)
    params = jax.device_get(H.load_frozen(method, H.init_params(method, jax.random.key(0), batch)))
    return config, method, params, batch


def test_every_method_has_something_to_export():
    assert set(FILES) >= {"mae", "mlm", "maskgit", "mar", "givt", "remasker", "patchtst", "pointmae", "videomae"}


@pytest.mark.parametrize("stem", [s for _, s in sorted(FILES.items())])
def test_the_export_reproduces_the_method_s_features(stem, tmp_path):
    config, method, params, batch = built(stem)
    assert has_image_encoder(method) or has_feature_function(method)
    key, _ = feature_input(config, method)
    inputs = np.asarray(batch[key])
    pools = ("mean", "tokens")
    for pool in pools:
        out = tmp_path / pool
        if has_image_encoder(method):
            model_config, encoder = method.encoder(params)
            save_stablehlo(model_config, encoder_only(model_config, encoder), out, pool=pool)
        else:
            exported, flat, example = export_method_features(config, method, params, pool, ("cpu",))
            write_stablehlo(exported, flat, example, pool, out)
        expected = np.asarray(jax.jit(functools.partial(method.features, pool=pool))(params, inputs))
        np.testing.assert_allclose(load_feature_extractor(out)(inputs), expected, atol=1e-5, rtol=1e-5)


def test_export_workdir_of_methods_without_a_vit_encoder(tmp_path):
    from mmjax.export import load_feature_params
    from mmjax.export.workdir import export_workdir

    # PatchTST: `features` over series windows, pooled by its own default (`mean`); the params it reads, and
    # nothing of the pretraining head.
    run = upstream("patchtst_series", None)
    _, method, trained = load_trained_run(run)
    windows = np.asarray(H.example_batch(H.shrunk(V.EXPERIMENTS / "patchtst_series.py"), 3)["series"])
    extract = load_feature_extractor(export_workdir(run, "stablehlo", tmp_path / "shlo"))
    np.testing.assert_allclose(extract(windows), jax.jit(method.features)(trained, windows), atol=1e-5, rtol=1e-5)
    config, params = load_feature_params(export_workdir(run, "safetensors", tmp_path / "st"))
    assert config.method == "patchtst"
    flat_trained = dict(flat_leaves(trained))
    read = dict(flat_leaves(params))
    assert read and set(read) < set(flat_trained) and not any("head" in k for k in read), sorted(read)
    for name, value in read.items():
        np.testing.assert_array_equal(value, flat_trained[name])
    for format in ("hf", "hf-vit"):
        with pytest.raises(ValueError, match=f"--format {format}"):
            export_workdir(run, format, tmp_path / format)
    # VideoMAE: `--format hf` writes VideoMAEForPreTraining (its converter is checked against transformers in
    # tests/test_export_hf.py); here, that the command writes it and that it reads back to the same params.
    from mmjax.export import load_hf_videomae

    with pytest.raises(ValueError, match="HF VideoMAEForPreTraining cannot express this model: model.cls_token=True"):
        export_workdir(upstream("videomae_moving_digits", None), "hf", tmp_path / "digits")
    config = H.shrunk(V.EXPERIMENTS / "videomae_moving_digits.py")
    with config.unlocked():  # the layout HF has (the paper's): no cls token, flat sin-cos tables
        config.model.update(cls_token=False, posemb="sincos_flat")
        config.decoder.update(posemb="sincos_flat", embed_bias=False, norm_eps=1e-5)
    run = str(tmp_path / "videomae_run")
    H.write_finished_run(config, run)
    _, _, trained = load_trained_run(run)
    _, back = load_hf_videomae(export_workdir(run, "hf", tmp_path / "videomae"))
    jax.tree.map(np.testing.assert_array_equal, back, jax.device_get(trained))
    # MLM: `--format hf` is BertForMaskedLM; transformers' encoder gives the features `mlm` reports.
    run = upstream("mlm_pydoc", None)
    _, method, trained = load_trained_run(run)
    out = export_workdir(run, "hf", tmp_path / "bert")
    ids = np.array(H.example_batch(H.shrunk(V.EXPERIMENTS / "mlm_pydoc.py"), 2)["input_ids"])
    ids[:, 0] = method.special.cls
    ids[1, ids.shape[1] // 2 :] = method.special.pad  # a shorter text: padding no token attends to
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    bert = transformers.BertForMaskedLM.from_pretrained(out).eval()
    with torch.no_grad():
        real = torch.from_numpy((ids != method.special.pad).astype(np.int64))
        hidden = bert.bert(input_ids=torch.from_numpy(ids.astype(np.int64)), attention_mask=real).last_hidden_state
    np.testing.assert_allclose(hidden[:, 0].numpy(), jax.jit(method.features)(trained, ids), atol=1e-4, rtol=1e-4)
    # ReMasker: rows with missing cells (NaN) go through the exported extractor as through `features`.
    run = upstream("remasker_wine", None)
    _, method, trained = load_trained_run(run)
    rows = np.random.default_rng(0).normal(size=(4, method.options.num_columns)).astype(np.float32)
    rows[0, 1] = rows[2, :3] = np.nan
    extract = load_feature_extractor(export_workdir(run, "stablehlo", tmp_path / "remasker", pool="mean"))
    expected = jax.jit(functools.partial(method.features, pool="mean"))(trained, rows)
    np.testing.assert_allclose(extract(rows), expected, atol=1e-5)


def load_trained_run(workdir):
    from mmjax.train import load_trained

    config, method, params = load_trained(workdir, devices=jax.devices()[:1])
    return config, method, jax.device_get(params)
