"""MONAI transforms for CS-MRI undersampling and noise-robustness studies (Hyper-Convolution paper, §4.3-4.4)."""

from . import kspace, noise
from .kspace import *  # noqa: F403
from .noise import *  # noqa: F403

__all__ = [*kspace.__all__, *noise.__all__]
