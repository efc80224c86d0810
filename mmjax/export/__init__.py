"""Weight conversion to and from other libraries."""

from mmjax.export.hf_vitmae import (
    CheckpointMismatchError,
    config_from_hf,
    convert_hf_vitmae,
    load_hf_vitmae,
    normalize_key,
)

__all__ = [
    "CheckpointMismatchError",
    "config_from_hf",
    "convert_hf_vitmae",
    "load_hf_vitmae",
    "normalize_key",
]
