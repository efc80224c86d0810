"""Data: grain sources and pipelines, image transforms, normalization."""

from mmjax.data.pipeline import eval_dataset, per_process_batch_size, train_dataset
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
from mmjax.data.transforms import (
    denormalize_images,
    normalize_images,
    random_resized_crop,
    resize_center_crop,
)

__all__ = [
    "ArrayRecordImageSource",
    "ArraySource",
    "ImageFolderSource",
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
