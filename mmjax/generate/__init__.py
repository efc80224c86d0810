"""Generation by iterative parallel decoding of masked codes (MaskGIT / Muse): pure functions methods use.

Sampling a trained workdir (`python -m mmjax sample`) is run-level: `mmjax.evaluate.sampling`.
"""

from mmjax.generate.decode import DecodeState, TokensToLogits, decode, mask_len_schedule, sample_codes
from mmjax.generate.guidance import GUIDANCE_SCHEDULES, guidance_scale, guide, guided_tokens_to_logits

__all__ = [
    "GUIDANCE_SCHEDULES",
    "DecodeState",
    "TokensToLogits",
    "decode",
    "guidance_scale",
    "guide",
    "guided_tokens_to_logits",
    "mask_len_schedule",
    "sample_codes",
]
