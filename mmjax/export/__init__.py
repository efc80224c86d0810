"""Weight conversion to and from other libraries, and export of trained encoders."""

from mmjax.export.hf_vitmae import (
    config_from_hf,
    convert_hf_vitmae,
    hf_vitmae_config,
    load_hf_vitmae,
    normalize_key,
    to_hf_vitmae,
)
from mmjax.export.plan import CheckpointMismatchError

__all__ = [
    "CheckpointMismatchError",
    "config_from_hf",
    "convert_hf_vitmae",
    "hf_vitmae_config",
    "load_hf_vitmae",
    "normalize_key",
    "to_hf_vitmae",
]
