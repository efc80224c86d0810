"""Fine-tuning: layer-wise learning-rate decay at BEiT's rates, a classifier that starts from the pretrained encoder."""

import os
import shutil
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.data import presets
from mmjax.data.kinds import data_kind
from mmjax.errors import user_message
from mmjax.evaluate.report import load_report
from mmjax.methods import finetune
from mmjax.train import Preempted, build_method, checkpoint, load_trained, train
from mmjax.train.defaults import training_sections
from mmjax.train.loop import config_as_dict
from mmjax.train.optimizer import layer_decay_scales, make_optimizer
from mmjax.train.preemption import PreemptionWatcher
from tests.helpers import ROOT, load_experiment
from tests.xla_flags import xla_flags


def test_layer_decay_gives_block_i_of_l_the_rate_decay_to_the_l_minus_i():
    d, leaf = 0.5, jnp.ones((2,))
    params = {
        "encoder": {
            "patch_embed": {"kernel": leaf},
            "cls_token": leaf,
            "blocks": {f"block_{i}": {"mlp": {"kernel": leaf}} for i in range(3)},
            "norm": {"scale": leaf},
        },
        "head": {"kernel": leaf},
    }
    scales = layer_decay_scales(params, d)
    enc = scales["encoder"]
    assert float(enc["patch_embed"]["kernel"]) == float(enc["cls_token"]) == d**4  # the embeddings: L + 1
    assert [float(enc["blocks"][f"block_{i}"]["mlp"]["kernel"]) for i in range(3)] == [d**3, d**2, d**1]
    assert float(enc["norm"]["scale"]) == float(scales["head"]["kernel"]) == 1.0
    scanned = layer_decay_scales({"blocks": {"layers": {"kernel": jnp.ones((3, 4, 4))}}, "head": leaf}, d)
    np.testing.assert_allclose(scanned["blocks"]["layers"]["kernel"][:, 0, 0], [d**3, d**2, d**1])
    # Through the optimizer: each update is the undecayed one times its scale.
    config = training_sections(finetune.default_config()).train
    config.update(steps=10, warmup_steps=0, lr=0.1, layer_decay=d)
    grads = jax.tree.map(lambda x: x * 0.3, params)
    decayed, plain = make_optimizer(config, params)[0], None
    config.layer_decay = 1.0
    plain = make_optimizer(config, params)[0]
    a = decayed.update(grads, decayed.init(params), params)[0]
    b = plain.update(grads, plain.init(params), params)[0]
    jax.tree.map(lambda x, y, s: np.testing.assert_allclose(x, y * s, rtol=1e-6), a, b, scales)


def tiny_mae(workdir):
    config = load_experiment("mae_digits", "steps=4")
    config.model.update(width=16, depth=2, heads=2, mlp_dim=32)
    config.decoder.update(width=16, depth=1, heads=2, mlp_dim=32)
    config.train.update(batch_size=16, tensorboard=False)
    config.eval.protocols = ()
    train(config, str(workdir), devices=jax.devices()[:1])
    return workdir


def finetune_config(pretrained, steps=80):
    config = training_sections(finetune.default_config())
    config.finetune.update(from_workdir=str(pretrained), num_classes=10)
    config.data = presets.digits()
    config.train.update(steps=steps, batch_size=32, lr=1e-2, warmup_steps=5, layer_decay=0.75, log_every=5)
    config.train.update(checkpoint_every=20, tensorboard=False)
    config.eval.update(batch_size=128)
    return config


def test_a_classifier_starts_from_the_pretrained_encoder_and_learns_the_digits(tmp_path):
    pretrained = tiny_mae(tmp_path / "mae")
    _, _, mae_params = load_trained(str(pretrained), devices=jax.devices()[:1])
    config = finetune_config(pretrained)
    method = build_method(config)
    assert method.model_config.depth == 2 and method.model_config.width == 16  # the pretrained run's encoder
    result = train(config, str(tmp_path / "ft"), devices=jax.devices()[:1])
    losses = [row["loss"] for row in result.history]
    assert np.mean(losses[-2:]) < 0.8 * losses[0], losses

    from mmjax.evaluate import evaluate_pretraining

    evaluate_pretraining(config, result.method, result.state.params, str(tmp_path / "ft"), step=result.step)
    rows = {r.name: r.value for r in load_report(str(tmp_path / "ft"))["results"]}
    assert rows["finetune classifier"] > rows["most frequent class"] + 0.2, rows
    # The first checkpoint's encoder moved away from the pretrained one, but started from it: a fresh init of the
    # same seed with the pretrained encoder copied in is what `load_frozen` gives.
    fresh = method.load_frozen(
        method.init(jax.random.key(0), {"image": jnp.zeros((1, 8, 8, 1)), "label": jnp.zeros((1,), jnp.int32)}),
        {"pretrained": load_run(pretrained)},
    )
    jax.tree.map(np.testing.assert_array_equal, fresh["encoder"], jax.device_get(mae_params["encoder"]))
    # The pretrained workdir can go: the fine-tuned run resumes from its own files.
    shutil.rmtree(pretrained)
    config.train.steps = 85
    assert train(config, str(tmp_path / "ft"), devices=jax.devices()[:1]).step == 85


def load_run(workdir):
    from mmjax.methods.protocol import LoadedRun

    return LoadedRun(*load_trained(str(workdir), devices=jax.devices()[:1]))


def test_a_start_without_an_encoder_or_without_a_run_is_named(tmp_path):
    # Every method of the library has an encoder; the fault tests' linear model has none.
    from tests.fault_model import tiny

    checkpoint.write_config(str(tmp_path / "linear"), config_as_dict(tiny()))
    with pytest.raises(ValueError) as caught:
        build_method(finetune_config(tmp_path / "linear"))
    assert "finetune.from_workdir: a 'fault_linear' run has no encoder to fine-tune" in user_message(caught.value)
    os.makedirs(tmp_path / "empty")
    with pytest.raises(FileNotFoundError) as caught:
        build_method(finetune_config(tmp_path / "empty"))
    message = user_message(caught.value)
    assert f"finetune.from_workdir='{tmp_path / 'empty'}' has no config.json" in message and "\n" not in message
    with pytest.raises(ValueError, match="finetune.from_workdir is empty"):
        build_method(finetune_config(""))


def test_lora_trains_the_adapters_and_the_head_and_exports_them_merged(tmp_path):
    pretrained = tiny_mae(tmp_path / "mae")
    _, _, mae_params = load_trained(str(pretrained), devices=jax.devices()[:1])
    config = finetune_config(pretrained, steps=20)
    config.finetune.update(lora_rank=4, lora_targets=("attention", "mlp"))
    result = train(config, str(tmp_path / "ft"), devices=jax.devices()[:1])
    params = jax.device_get(result.state.params)
    # The encoder is the pretrained one to the bit; the adapters and the head moved.
    jax.tree.map(np.testing.assert_array_equal, params["encoder"], jax.device_get(mae_params["encoder"]))
    assert sorted(params["lora"]) == [
        f"encoder/blocks/block_{i}/{n}"
        for i in (0, 1)
        for n in ("attn/key", "attn/out", "attn/query", "attn/value", "mlp/fc1", "mlp/fc2")
    ]
    assert all(np.abs(a["b"]).max() > 0 for a in params["lora"].values())
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < losses[0], losses
    # Exported, the adapters are folded into the kernels: the extractor gives the run's features.
    from mmjax.export import export_workdir, load_feature_extractor

    extract = load_feature_extractor(export_workdir(tmp_path / "ft", "stablehlo", tmp_path / "shlo", pool="mean"))
    images = np.random.default_rng(0).integers(0, 255, (4, 8, 8, 1)).astype(np.float32) / 255.0
    expected = result.method.features(params, jnp.asarray((images - 0.3) / 0.4), "mean")
    np.testing.assert_allclose(extract((images - 0.3) / 0.4), expected, atol=1e-5, rtol=1e-5)


class StopAfter(PreemptionWatcher):
    """A preemption notice after `steps` steps (what SIGTERM does, at a chosen step)."""

    def __init__(self, steps):
        super().__init__()
        self.left = steps

    def should_stop(self):
        self.left -= 1
        return self.left == 0 or self.received


def test_a_stopped_fine_tune_resumes_to_the_same_parameters(tmp_path):
    pretrained = tiny_mae(tmp_path / "mae")
    config = finetune_config(pretrained, steps=20)
    config.finetune.lora_rank = 2  # the adapters, the head and their optimizer state all resume
    config.finetune.update(drop_path=0.2, mixup=0.8, cutmix=1.0)  # and every random draw of a step
    straight = train(config, str(tmp_path / "straight"), devices=jax.devices()[:1])
    with StopAfter(9) as watcher, pytest.raises(Preempted):
        train(config, str(tmp_path / "stopped"), devices=jax.devices()[:1], watcher=watcher)
    resumed = train(config, str(tmp_path / "stopped"), devices=jax.devices()[:1])
    assert resumed.history[0]["step"] > 9
    jax.tree.map(
        np.testing.assert_array_equal, jax.device_get(straight.state.params), jax.device_get(resumed.state.params)
    )


def tiny_jepa(workdir):
    config = load_experiment("jepa_mnist", "steps=2")
    config.data = presets.digits()
    config.model.update(image_size=8, patch_size=2, width=16, depth=2, heads=2, mlp_dim=32)
    config.predictor.update(width=16, depth=1, heads=2, mlp_dim=32)
    config.train.update(batch_size=16, tensorboard=False)
    config.eval.protocols = ()
    train(config, str(workdir), devices=jax.devices()[:1])
    return workdir


def test_jepa_s_encoder_without_a_cls_token_fine_tunes_on_its_mean_and_exports(tmp_path):
    from mmjax.export import export_workdir, load_feature_extractor

    pretrained = tiny_jepa(tmp_path / "jepa")
    config = finetune_config(pretrained, steps=20)
    with pytest.raises(ValueError) as caught:
        build_method(config)
    assert "finetune.pool='cls': the 'jepa' encoder of finetune.from_workdir=" in user_message(caught.value)
    config.finetune.pool = "mean"
    result = train(config, str(tmp_path / "ft"), devices=jax.devices()[:1])
    params = jax.device_get(result.state.params)
    assert "cls_token" not in params["encoder"]
    _, _, jepa_params = load_trained(str(pretrained), devices=jax.devices()[:1])
    assert params["encoder"].keys() == jax.device_get(jepa_params["target_encoder"]).keys()
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < losses[0], losses
    images = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype(np.float32)
    extract = load_feature_extractor(export_workdir(tmp_path / "ft", "stablehlo", tmp_path / "shlo", pool="cls"))
    np.testing.assert_allclose(extract(images), result.method.features(params, images, "mean"), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="HF ViTModel has a cls token and the 'jepa' encoder"):
        export_workdir(pretrained, "hf-vit", tmp_path / "hf")


FINETUNE_EXPERIMENT = """
from tests.test_finetune import finetune_config


def get_config(arg=None):
    config = finetune_config("", steps=60)
    config.finetune.update(drop_path=0.2, mixup=0.8, cutmix=1.0)
    config.train.update(checkpoint_every=10, keep_checkpoints=100)
    return config
"""


def finetune_cli(workdir, experiment, pretrained):
    env = {**os.environ, "XLA_FLAGS": xla_flags(1), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "mmjax", "finetune", "--config", str(experiment), "--workdir", str(workdir)]
    cmd += ["--from", str(pretrained)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.promise
def test_a_killed_fine_tune_resumes_to_the_straight_run_bitwise(tmp_path):
    # `python -m mmjax finetune`, killed (SIGKILL) once its first checkpoint is written, then run again: it
    # resumes there and ends equal to a run never killed, drop path and Mixup / CutMix draws included.
    pretrained = tiny_mae(tmp_path / "mae")
    experiment = tmp_path / "finetune_digits.py"
    experiment.write_text(FINETUNE_EXPERIMENT)
    straight = finetune_cli(tmp_path / "straight", experiment, pretrained)
    killed = finetune_cli(tmp_path / "killed", experiment, pretrained)
    checkpoints = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and killed.poll() is None and not any(p.isdigit() for p in listing(checkpoints)):
        time.sleep(0.01)
    assert killed.poll() is None, killed.communicate()[0]
    killed.kill()
    killed.communicate()
    first = min(int(p) for p in listing(checkpoints) if p.isdigit())
    again = finetune_cli(tmp_path / "killed", experiment, pretrained)
    out = again.communicate(timeout=600)[0]
    assert again.returncode == 0 and f"resumed from step {first}" in out, out
    assert straight.wait(timeout=600) == 0, straight.communicate()[0]
    ends = [load_trained(str(tmp_path / run), 60, devices=jax.devices()[:1])[2] for run in ("straight", "killed")]
    jax.tree.map(np.testing.assert_array_equal, *map(jax.device_get, ends))


def listing(folder):
    return os.listdir(folder) if os.path.isdir(folder) else []


def tiny_mlm(workdir):
    config = load_experiment("mlm_pydoc", "steps=4")
    config.model.update(width=32, depth=2, heads=2, mlp_dim=64, max_len=32)
    config.data.update(seq_len=32, vocab_size=300)
    config.mlm.max_predictions = 8
    config.train.update(batch_size=16, tensorboard=False, log_every=2)
    train(config, str(workdir), devices=jax.devices()[:1])
    return workdir


def test_a_bert_mlm_fine_tunes_to_tell_the_packages_of_docstrings_apart(tmp_path):
    from mmjax.evaluate.images import classification_results
    from mmjax.export import export_workdir, load_feature_extractor
    from mmjax.train.optimizer import layer_decay_scales

    pretrained = tiny_mlm(tmp_path / "mlm")
    config = load_experiment("finetune_docstrings", "steps=120,pool=mean")
    config.finetune.from_workdir = config.data.tokenizer = str(pretrained)  # what `finetune --from` sets
    config.data.seq_len = 32
    config.train.update(lr=3e-3, warmup_steps=10, checkpoint_every=120, tensorboard=False)
    method = build_method(config)
    batch = {"input_ids": jnp.zeros((2, 32), jnp.int32), "label": jnp.zeros((2,), jnp.int32)}
    scales = layer_decay_scales(method.init(jax.random.key(0), batch), 0.9)["encoder"]
    assert float(scales["word_embeddings"]["embedding"]) == pytest.approx(0.9**3)  # BERT's names, L = 2
    assert float(scales["block_0"]["query"]["kernel"]) == pytest.approx(0.9**2)
    assert float(scales["block_1"]["fc2"]["kernel"]) == pytest.approx(0.9)
    result = train(config, str(tmp_path / "ft"), devices=jax.devices()[:1])
    params = jax.device_get(result.state.params)
    _, _, mlm_params = load_trained(str(pretrained), devices=jax.devices()[:1])
    assert not np.array_equal(params["encoder"]["block_0"]["query"]["kernel"], mlm_params["block_0"]["query"]["kernel"])
    accuracy, majority = (row.value for row in classification_results(config, result.method, params))
    assert accuracy > majority + 0.15, (accuracy, majority)
    # Exported through `features` (a BERT encoder has no ViT `encoder` hook): the extractor equals them.
    rows = np.asarray(next(iter(data_kind(config.data).eval_batches(config.data, "test", 4)))["input_ids"])
    extract = load_feature_extractor(export_workdir(tmp_path / "ft", "stablehlo", tmp_path / "shlo", pool="mean"))
    np.testing.assert_allclose(extract(rows), result.method.features(params, rows, "mean"), atol=1e-5, rtol=1e-5)
    # LoRA finds BERT's projections under their own names.
    config.finetune.update(lora_rank=2, lora_targets=("query_value", "mlp"))
    adapters = build_method(config).init(jax.random.key(0), batch)["lora"]
    assert sorted(adapters) == [f"encoder/block_{i}/{n}" for i in (0, 1) for n in ("fc1", "fc2", "query", "value")]


def test_a_series_encoder_fine_tunes_on_a_ucr_set_through_its_features(tmp_path):
    from mmjax.evaluate.images import classification_results
    from mmjax.export import export_workdir, load_feature_extractor

    config = load_experiment("patchtst_series", "steps=4,window=32")
    config.model.update(width=16, depth=2, heads=2, mlp_dim=32)
    config.train.update(batch_size=16, tensorboard=False)
    train(config, str(tmp_path / "patchtst"), devices=jax.devices()[:1])
    config = load_experiment("finetune_series", "window=32,steps=100")
    config.finetune.from_workdir = str(tmp_path / "patchtst")
    config.train.update(lr=3e-3, warmup_steps=10, tensorboard=False)
    config.finetune.pool = "cls"
    with pytest.raises(ValueError, match="finetune.pool='cls': the 'patchtst' encoder of finetune.from_workdir="):
        build_method(config)
    config.finetune.pool = "mean"
    config.data.window = 48
    with pytest.raises(ValueError, match=r"data: its batches give series \(48, 1\); the 'patchtst' encoder"):
        build_method(config)
    config.data.window = 32
    method = build_method(config)
    params = method.init(jax.random.key(0), {"series": jnp.zeros((2, 32, 1)), "label": jnp.zeros((2,), jnp.int32)})
    marks = method.trainable(params)
    trained = [jax.tree_util.keystr(p) for p, t in jax.tree_util.tree_flatten_with_path(marks["encoder"])[0] if t]
    frozen = [jax.tree_util.keystr(p) for p, t in jax.tree_util.tree_flatten_with_path(marks["encoder"])[0] if not t]
    assert trained and frozen and all("head" not in p for p in trained), frozen  # its pretraining head is not read
    result = train(config, str(tmp_path / "ft"), devices=jax.devices()[:1])
    params = jax.device_get(result.state.params)
    accuracy, majority = (row.value for row in classification_results(config, result.method, params))
    assert accuracy > majority + 0.1, (accuracy, majority)
    series = np.random.default_rng(0).normal(size=(3, 32, 1)).astype(np.float32)
    extract = load_feature_extractor(export_workdir(tmp_path / "ft", "stablehlo", tmp_path / "shlo", pool="mean"))
    np.testing.assert_allclose(extract(series), result.method.features(params, series, "mean"), atol=1e-5, rtol=1e-5)
