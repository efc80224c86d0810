"""Audio-MAE: log-mel spectrograms against NumPy, the synthesized sounds, masks, and a short training run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.data.synth_audio import CLASSES, SynthAudioSource, synthesize
from mmjax.evaluate.protocols import run_protocols
from mmjax.methods.audiomae import AudioMAE
from mmjax.ops.audio import log_mel_spectrogram, power_spectrogram
from mmjax.train import train
from tests.av_helpers import tiny_config

RATE, N_FFT, HOP = 8000, 256, 128


def numpy_log_mel(signal, sample_rate, n_fft, hop, num_mels, f_min, f_max):
    """A loop-by-loop reference: periodic Hann, |rfft|^2 per frame, HTK triangles from their corner frequencies."""
    window = np.hanning(n_fft + 1)[:-1]
    frames = [signal[s : s + n_fft] for s in range(0, len(signal) - n_fft + 1, hop)]
    power = np.array([np.abs(np.fft.rfft(f * window)) ** 2 for f in frames])
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    corners = [hz(m) for m in np.linspace(mel(f_min), mel(f_max), num_mels + 2)]
    bins = np.arange(n_fft // 2 + 1) * (sample_rate / 2) / (n_fft // 2)
    filters = np.zeros((len(bins), num_mels))
    for m in range(num_mels):
        lo, mid, hi = corners[m], corners[m + 1], corners[m + 2]
        for k, f in enumerate(bins):
            if lo <= f <= mid:
                filters[k, m] = (f - lo) / (mid - lo)
            elif mid < f <= hi:
                filters[k, m] = (hi - f) / (hi - mid)
    return np.log(power @ filters + 1e-6)


@pytest.mark.parametrize("num_mels, f_min, f_max", [(32, 0.0, 4000.0), (20, 100.0, 3000.0)])
def test_log_mel_matches_numpy_reference(num_mels, f_min, f_max):
    rng = np.random.default_rng(0)
    t = np.arange(4000) / RATE
    signal = np.sin(2 * np.pi * 440 * t) + 0.3 * rng.normal(size=t.shape)  # broadband: every band has power
    ours = log_mel_spectrogram(jnp.asarray(signal[None], jnp.float32), RATE, N_FFT, HOP, num_mels, f_min, f_max)
    ref = numpy_log_mel(signal, RATE, N_FFT, HOP, num_mels, f_min, f_max)
    assert ours.shape == (1, 1 + (4000 - N_FFT) // HOP, num_mels)
    np.testing.assert_allclose(np.asarray(ours[0]), ref, rtol=1e-4, atol=1e-4)


def _peak_bins(signal):
    return np.argmax(np.asarray(power_spectrogram(jnp.asarray(signal[None]), N_FFT, HOP))[0], axis=-1)


def test_a_pure_tone_peaks_at_its_frequency_bin():
    signal, params = synthesize(CLASSES.index("tone"), np.random.default_rng(5), 8320, RATE)
    expected = round(params["freq"] / (RATE / N_FFT))
    assert (np.abs(_peak_bins(signal) - expected) <= 1).all()
    assert (_peak_bins(signal) == expected).mean() > 0.9


def test_chirps_move_in_their_direction_and_bursts_stay_in_their_window():
    up, p_up = synthesize(CLASSES.index("chirp_up"), np.random.default_rng(1), 8320, RATE)
    down, p_down = synthesize(CLASSES.index("chirp_down"), np.random.default_rng(1), 8320, RATE)
    peaks_up, peaks_down = _peak_bins(up), _peak_bins(down)
    assert p_up["end"] > p_up["start"] and peaks_up[-1] > peaks_up[0] + 5 and (np.diff(peaks_up) >= -1).all()
    assert p_down["end"] < p_down["start"] and peaks_down[-1] < peaks_down[0] - 5
    burst, p = synthesize(CLASSES.index("noise_burst"), np.random.default_rng(2), 8320, RATE)
    inside = np.zeros(8320, bool)
    inside[p["onset"] : p["onset"] + p["length"]] = True
    assert np.std(burst[inside]) > 10 * np.std(burst[~inside])


def test_synth_audio_is_deterministic_and_labelled():
    a, b, test = SynthAudioSource("train", 12), SynthAudioSource("train", 12), SynthAudioSource("test", 12)
    example = a[9]
    assert example["audio"].shape == (8320,) and example["audio"].dtype == np.float32
    assert int(example["label"]) == 9 % len(CLASSES)
    np.testing.assert_array_equal(example["audio"], b[9]["audio"])
    assert not np.array_equal(example["audio"], test[9]["audio"])


def _is_time_frequency(hidden, grid):
    """Whether a `[T * F]` mask is a union of whole time rows and frequency columns."""
    h = hidden.reshape(grid)
    rows, cols = h.all(1), h.all(0)
    return np.array_equal(h, rows[:, None] | cols[None, :])


def test_curriculum_moves_from_random_to_time_frequency_masks():
    config = tiny_config("audiomae")
    config.audiomae.update(masking="curriculum", curriculum_steps=10)
    method = AudioMAE.from_config(config)
    grid = method.grid  # (16, 8)
    start = method.make_mask(jax.random.key(0), 16, jnp.zeros(()))
    end = method.make_mask(jax.random.key(0), 16, jnp.full((), 10.0))
    for mask in (start, end):
        np.testing.assert_array_equal(np.asarray(mask.mask).sum(1), 8 * 8 + 4 * 16 - 8 * 4)  # same count
    assert not any(_is_time_frequency(m, grid) for m in np.asarray(start.mask))
    assert all(_is_time_frequency(m, grid) for m in np.asarray(end.mask))


def test_patch_size_that_does_not_tile_the_spectrogram_is_named():
    config = tiny_config("audiomae")
    config.audiomae.patch_size = (5, 4)
    with pytest.raises(ValueError, match="audiomae.patch_size"):
        AudioMAE.from_config(config)


@pytest.mark.slow  # long: kept out of CI's 15-minute budget; run with -m slow
def test_a_few_audiomae_steps_reduce_the_loss_and_count_steps(tmp_path):
    config = tiny_config("audiomae", steps=20)
    config.audiomae.curriculum_steps = 1000  # mostly random masks during these few steps
    result = train(config, str(tmp_path))
    losses = [row["loss"] for row in result.history]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert float(result.state.params["steps_seen"]) == 20.0  # the frozen counter moved once per update
    features = result.method.features(result.state.params, jnp.zeros((2, 64, 32)))
    assert features.shape == (2, config.model.width)


def test_audioset_experiment_builds_audiomae_b():
    from mmjax.methods.registry import build_method
    from tests.helpers import load_experiment

    method = build_method(load_experiment("audiomae_audioset"))
    assert method.spec_size == (1024, 128) and method.grid == (64, 8)
    mask = jax.eval_shape(lambda: method.make_mask(jax.random.key(0), 2, jnp.zeros(())))
    assert mask.ids_keep.shape == (2, int(512 * (1 - 0.8)))  # MAE's kept count


def test_wav_folder_reads_pads_and_checks_the_rate(tmp_path):
    from scipy.io import wavfile

    from mmjax.data.audio import WavFolder

    (tmp_path / "beep").mkdir()
    wavfile.write(tmp_path / "beep" / "a.wav", RATE, (np.ones(100) * 16384).astype(np.int16))
    example = WavFolder(str(tmp_path), 150, RATE)[0]
    np.testing.assert_allclose(example["audio"][:100], 16384 / 32767, rtol=1e-6)
    np.testing.assert_array_equal(example["audio"][100:], 0.0)
    with pytest.raises(ValueError, match="data.sample_rate=16000"):
        WavFolder(str(tmp_path), 150, 16000)[0]


def test_evaluate_returns_probe_rows_for_the_encoder_a_random_one_and_the_raw_input():
    from mmjax.data.kinds import data_kind

    config = tiny_config("audiomae")
    method = AudioMAE.from_config(config)
    example = data_kind(config.data).example_batch(config.data, 1)
    # The random encoder's own parameters: the two encoder rows must agree exactly.
    params = jax.device_get(jax.jit(method.init)(jax.random.key(config.seed + 12345), example))
    rows = run_protocols(config, method, params, "unused")[0]
    assert [(r.protocol, r.name, r.metric, r.baseline, r.split) for r in rows] == [
        ("linear probe", "audiomae encoder", "accuracy", False, "test"),
        ("linear probe", "random encoder", "accuracy", True, "test"),
        ("linear probe", "raw input", "accuracy", True, "test"),
    ]
    assert rows[0].value == rows[1].value
    assert all(0.0 <= r.value <= 1.0 for r in rows)
    assert rows[2].value > 2 / len(CLASSES)  # the synthesized classes differ in their spectra: well above chance
    config.eval.protocols = ()
    assert run_protocols(config, method, params, "unused")[0] == []
