"""MONAI transforms for CS-MRI undersampling and noise-robustness studies ("Hyper-Convolutions via Implicit Kernels
for Medical Imaging", Sec. 4.3-4.4), and data checks (non-finite voxels, unreadable files, image/label grid
mismatches) that name the offending file."""

from . import checks, io, kspace, labels, noise
from .checks import *  # noqa: F403
from .io import *  # noqa: F403
from .kspace import *  # noqa: F403
from .labels import *  # noqa: F403
from .noise import *  # noqa: F403

__all__ = [*checks.__all__, *io.__all__, *kspace.__all__, *labels.__all__, *noise.__all__]
