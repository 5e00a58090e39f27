"""MONAI transforms for CS-MRI undersampling and noise-robustness studies (Hyper-Convolution paper, §4.3-4.4), and data
checks (non-finite voxels, unreadable files, image/label grid mismatches) that name the offending file."""

from . import checks, kspace, noise
from .checks import *  # noqa: F403
from .kspace import *  # noqa: F403
from .noise import *  # noqa: F403

__all__ = [*checks.__all__, *kspace.__all__, *noise.__all__]
