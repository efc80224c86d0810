"""Audio-MAE ViT-B pretraining on AudioSet (Huang et al. 2022): 128 mel x 1024 frames, 16 x 16 patches, mask 0.8.

Data are user-provided 16 kHz wav clips under `<path>/train/<label>/<clip>.wav` (and
`<path>/test/...` for the probe; `data.source=wav_folder`, see `mmjax/data/audio.py`);
clips are cropped or zero-padded to 10.23 s. Features: 25 ms Hann windows every 10 ms
(n_fft 400, hop 160), 128 HTK mel bands, log (computed on device). Audio-MAE uses
Kaldi fbank features (Povey window, dither, pre-emphasis) normalized with AudioSet's
mean -4.27 and std 4.57: ours differ, so measure `data.spec_mean` / `spec_std` on your
clips (the defaults below are placeholders).

Variants: `path=...`, `epochs=N` (32 in the paper for AudioSet-2M), `masking=random|
time_frequency|curriculum` (the paper pretrains with random masking).

Recipe: encoder ViT-B (768 x 12), decoder 512 x 8 (16 heads; the paper's decoder uses
local window attention, here global), batch 512, AdamW (0.9, 0.95), weight decay 1e-4,
lr = 2e-4 * batch / 256, 3 warmup epochs, no norm-pix loss.
"""

import ml_collections

from mmjax.config import parse_arg
from mmjax.data import presets
from mmjax.methods import audiomae
from mmjax.train.defaults import training_sections

AUDIOSET_2M_CLIPS = 2_000_000


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    variant = parse_arg(arg, path="/data/audioset_wav", epochs=32, masking="random")
    config = training_sections(audiomae.default_config())
    config.model.update(width=768, depth=12, heads=12, mlp_dim=3072, dtype="bfloat16")
    config.decoder.update(width=512, depth=8, heads=16, mlp_dim=2048)
    batch = 512
    steps_per_epoch = AUDIOSET_2M_CLIPS // batch
    config.audiomae.update(
        patch_size=(16, 16),
        masking=variant["masking"],
        mask_ratio=0.8,
        time_ratio=0.5,
        freq_ratio=0.5,
        curriculum_steps=10 * steps_per_epoch,
        norm_pix_loss=False,
    )
    config.data = presets.audioset_wav(variant["path"])
    config.train.update(
        batch_size=batch,
        lr=2e-4 * batch / 256,
        steps=variant["epochs"] * steps_per_epoch,
        warmup_steps=3 * steps_per_epoch,
        weight_decay=1e-4,
        b1=0.9,
        b2=0.95,
        log_every=100,
        checkpoint_every=2000,
    )
    config.eval.protocols = ()  # no labelled test split here
    return config
