"""Image-domain noise for robustness studies ("Hyper-Convolutions via Implicit Kernels for Medical Imaging",
Sec. 4.4). The docstring of :mod:`.array` says which transform (these or MONAI's RandGaussianNoise /
RandRicianNoise) to use for which kind of noise."""

from . import array, dictionary
from .array import *  # noqa: F403
from .dictionary import *  # noqa: F403

__all__ = [*array.__all__, *dictionary.__all__]
