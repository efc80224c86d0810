"""Generation by iterative decoding: masked codes (MaskGIT / Muse), masked or causal continuous tokens
(GIVT / MAR, `sample_tokens`); pure functions methods use, the model and head passed in as functions.

Sampling a trained workdir (`python -m mmjax sample`) is run-level: `mmjax.evaluate.sampling`.
"""

from mmjax.generate.continuous import ORDERS, ContinuousDecodeState, decode_causal, decode_masked, sample_tokens
from mmjax.generate.decode import DecodeState, TokensToLogits, decode, mask_len_schedule, sample_codes
from mmjax.generate.guidance import GUIDANCE_SCHEDULES, guidance_scale, guide, guided_tokens_to_logits

__all__ = [
    "GUIDANCE_SCHEDULES",
    "ORDERS",
    "ContinuousDecodeState",
    "DecodeState",
    "TokensToLogits",
    "decode",
    "decode_causal",
    "decode_masked",
    "guidance_scale",
    "guide",
    "guided_tokens_to_logits",
    "mask_len_schedule",
    "sample_codes",
    "sample_tokens",
]
