"""Data: grain sources and pipelines, image transforms, normalization."""

from mmjax.data.corpus import load_documents
from mmjax.data.kinds import DataKind, available_data_kinds, data_kind, register_data_kind
from mmjax.data.moving_digits import MovingDigitsSource
from mmjax.data.pipeline import eval_dataset, image_batch_spec, per_process_batch_size, prepare_images, train_dataset
from mmjax.data.sources import (
    ArrayRecordImageSource,
    ArraySource,
    ImageFolderSource,
    digits_source,
    encode_record,
    make_source,
    mnist_source,
    write_array_record,
)
from mmjax.data.synth_audio import SynthAudioSource
from mmjax.data.text import load_tokenizer, pack_documents, packed_split, text_data
from mmjax.data.transforms import (
    denormalize_images,
    normalize_images,
    random_resized_crop,
    resize_center_crop,
)

__all__ = [
    "load_documents",
    "load_tokenizer",
    "pack_documents",
    "packed_split",
    "text_data",
    "DataKind",
    "available_data_kinds",
    "data_kind",
    "image_batch_spec",
    "prepare_images",
    "register_data_kind",
    "ArrayRecordImageSource",
    "ArraySource",
    "ImageFolderSource",
    "MovingDigitsSource",
    "SynthAudioSource",
    "denormalize_images",
    "digits_source",
    "encode_record",
    "eval_dataset",
    "make_source",
    "mnist_source",
    "normalize_images",
    "per_process_batch_size",
    "random_resized_crop",
    "resize_center_crop",
    "train_dataset",
    "write_array_record",
]
