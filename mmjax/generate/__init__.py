"""Generation by iterative decoding: masked codes (MaskGIT / Muse), masked or causal continuous tokens
(GIVT / MAR); pure functions methods use.

Sampling a trained workdir (`python -m mmjax sample`) is run-level: `mmjax.evaluate.sampling`.
"""

from mmjax.generate.continuous import ORDERS, ContinuousDecodeState, decode_causal, decode_masked
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
]
