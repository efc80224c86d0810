"""The `audio` data kind: waveform sources, grain pipelines, and log-mel spectrograms on device.

Host batches carry raw waveforms; `prepare` turns them into normalized log-mel
spectrograms inside the jitted step (the STFT is cheap on an accelerator, the host
only synthesizes or reads samples, and the spectrogram settings live in one place).

Sources (`data.source`):
- `synth_audio`: the bundled synthesized classes (`mmjax.data.synth_audio`).
- `wav_folder`: user-provided clips, `data.root/<split>/<class name>/<clip>.wav`
  (mono or first channel, at `data.sample_rate`; read with scipy), cropped or
  zero-padded to `data.num_samples`. For AudioSet, save the clips you have per label folder.
"""

from __future__ import annotations

import os
from typing import Any

import grain
import jax
import jax.numpy as jnp
import numpy as np

from mmjax.data.pipeline import batched_stream
from mmjax.data.presets import AudioData, complete_data
from mmjax.data.registry import DataKind, register_data_kind
from mmjax.data.synth_audio import SynthAudioSource
from mmjax.ops.audio import log_mel_spectrogram, num_frames


class WavFolder:
    """Clips under `root/<class>/*.wav` -> `{"audio": float32 [num_samples], "label": int32}`."""

    def __init__(self, root: str, num_samples: int, sample_rate: int):
        if not os.path.isdir(root):
            raise FileNotFoundError(f"data.root split folder {root!r} is not a directory of <class>/<clip>.wav files")
        classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        self.files = [
            (os.path.join(root, c, f), i)
            for i, c in enumerate(classes)
            for f in sorted(os.listdir(os.path.join(root, c)))
            if f.endswith(".wav")
        ]
        if not self.files:
            raise ValueError(f"{root!r} holds no <class>/<clip>.wav files")
        self.num_samples, self.sample_rate = num_samples, sample_rate

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from scipy.io import wavfile

        path, label = self.files[index]
        rate, data = wavfile.read(path)
        if rate != self.sample_rate:
            raise ValueError(f"{path}: sample rate {rate} Hz, but data.sample_rate={self.sample_rate}; resample first")
        data = data[:, 0] if data.ndim == 2 else data
        if np.issubdtype(data.dtype, np.integer):
            data = data / float(np.iinfo(data.dtype).max)
        out = np.zeros(self.num_samples, np.float32)
        out[: min(len(data), self.num_samples)] = data[: self.num_samples]
        return {"audio": out, "label": np.int32(label)}


def make_audio_source(data_config: Any, split: str) -> Any:
    """The waveform source of `data.source` for `split` ("train" / "test")."""
    data_config = complete_data(AudioData, data_config)
    name = data_config.source
    if name == "synth_audio":
        count = data_config.num_train if split == "train" else data_config.num_test
        return SynthAudioSource(split, count, data_config.num_samples, data_config.sample_rate, data_config.seed)
    if name == "wav_folder":
        root = os.path.join(data_config.root, split)
        return WavFolder(root, data_config.num_samples, data_config.sample_rate)
    raise ValueError(f"data.source={name!r} is not an audio source; expected 'synth_audio' or 'wav_folder'")


def spectrogram_shape(data_config: Any) -> tuple[int, int]:
    """`(frames, num_mels)` of the spectrograms `prepare_audio` makes."""
    return num_frames(data_config.num_samples, data_config.n_fft, data_config.hop), data_config.num_mels


def audio_train_dataset(
    data_config: Any, global_batch_size: int, seed: int, process_index: int, process_count: int
) -> grain.IterDataset:
    """Endless shuffled batches `{"audio": float32 [b, L], "label": int32 [b]}` of this process's share."""
    data_config = complete_data(AudioData, data_config)
    ds = grain.MapDataset.source(make_audio_source(data_config, "train"))[process_index::process_count]
    return batched_stream(ds.shuffle(seed=seed).repeat(None), global_batch_size, process_count, data_config)


def audio_eval_dataset(data_config: Any, split: str, batch_size: int) -> grain.MapDataset:
    """All of `split` in order, batched (last batch kept)."""
    return grain.MapDataset.source(make_audio_source(data_config, split)).batch(batch_size, drop_remainder=False)


def audio_batch_spec(data_config: Any, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    """Host batches: `audio` float32 `[B, num_samples]`, `label` int32 `[B]`."""
    data_config = complete_data(AudioData, data_config)
    return {
        "audio": jax.ShapeDtypeStruct((batch_size, data_config.num_samples), jnp.float32),
        "label": jax.ShapeDtypeStruct((batch_size,), jnp.int32),
    }


def prepare_audio(batch: dict[str, jax.Array], data_config: Any) -> dict[str, jax.Array]:
    """Waveforms `[B, L]` -> `spectrogram` float32 `[B, frames, num_mels]`, `(log-mel - spec_mean) / spec_std`."""
    data_config = complete_data(AudioData, data_config)
    spec = log_mel_spectrogram(
        batch["audio"],
        data_config.sample_rate,
        data_config.n_fft,
        data_config.hop,
        data_config.num_mels,
        data_config.f_min,
        data_config.f_max,
    )
    rest = {k: v for k, v in batch.items() if k != "audio"}
    return {**rest, "spectrogram": (spec - data_config.spec_mean) / data_config.spec_std}


AUDIO = register_data_kind(DataKind("audio", audio_train_dataset, audio_batch_spec, prepare_audio, audio_eval_dataset))
