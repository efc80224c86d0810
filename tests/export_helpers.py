"""Tiny MAE models with every parameter random, for export and import tests."""

import jax
import jax.numpy as jnp
import numpy as np

from mmjax.methods.mae import MAE, default_config

IMAGE, PATCH = 32, 8


def tiny_mae(posemb: str = "learned", norm_pix_loss: bool = False) -> MAE:
    config = default_config()
    config.model.update(
        size=None, image_size=IMAGE, patch_size=PATCH, width=32, depth=2, heads=4, mlp_dim=64, posemb=posemb
    )
    config.decoder.update(width=16, depth=2, heads=2, mlp_dim=40, posemb=posemb)
    config.mae.update(norm_pix_loss=norm_pix_loss)
    return MAE.from_config(config)


def random_params(mae: MAE, seed: int = 0, scale: float = 0.5):
    """mmjax init's structure with every leaf replaced by N(0, scale^2) (numpy float32)."""
    shapes = mae.init(jax.random.key(0), {"image": jnp.zeros((1, IMAGE, IMAGE, 3))})
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda x: (rng.normal(size=x.shape) * scale).astype(np.float32), shapes)


def images_and_noise(batch_size: int = 3, seed: int = 1):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(batch_size, IMAGE, IMAGE, 3)).astype(np.float32)
    noise = rng.uniform(size=(batch_size, (IMAGE // PATCH) ** 2)).astype(np.float32)
    return images, noise


# An HF `ViTMAEConfig` of the same sizes as `tiny_mae()`.
HF_VITMAE_TINY = dict(
    image_size=IMAGE,
    patch_size=PATCH,
    num_channels=3,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    decoder_hidden_size=16,
    decoder_num_hidden_layers=2,
    decoder_num_attention_heads=2,
    decoder_intermediate_size=40,
)


def randomize_torch(model, scale: float = 0.5, seed: int = 0, buffers: bool = True, skip: tuple[str, ...] = ()):
    """Every floating tensor of a torch model's state dict set to N(0, scale^2), in place; returns it in eval mode.

    HF's init leaves position tables, cls and mask tokens at zero and LayerNorms at one, which
    would hide a mixed-up key. `buffers=False` leaves buffers (HF VideoMAE's fixed sin-cos
    table) as they are; `skip` names state-dict keys to leave.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    tensors = model.state_dict() if buffers else dict(model.named_parameters())
    with torch.no_grad():
        for name, value in tensors.items():
            if value.is_floating_point() and name not in skip:
                value.copy_(torch.randn(value.shape, generator=generator) * scale)
    return model.eval()
