"""Mask generators: pure functions of a PRNG key, static shapes, `jit`/`vmap` safe."""

from mmjax.masking.mask import Mask, num_visible_tokens, random_mask, random_mask_from_noise
from mmjax.masking.tokens import gather_tokens, restore_with_mask_tokens

__all__ = [
    "Mask",
    "gather_tokens",
    "num_visible_tokens",
    "random_mask",
    "random_mask_from_noise",
    "restore_with_mask_tokens",
]
