"""Array transforms for retrospective k-space undersampling and k-space noise, gathered as in MONAI's ``array.py``.

The code lives in one module per topic; this module re-exports their public names, so that
``from monai_implicit.transforms.kspace.array import X`` keeps working:

* :mod:`.fft` -- complex representations (``to_complex``, ``from_complex``) and the centred orthonormal FFT
  (``image_to_kspace``, ``kspace_to_image``);
* :mod:`.undersample` -- ``UndersamplingMask`` / ``RandUndersamplingMask`` and ``RetrospectiveUndersample`` /
  ``RandRetrospectiveUndersample`` (the mask samplers themselves are in :mod:`.masks`);
* :mod:`.noise` -- ``KspaceGaussianNoise`` / ``RandKspaceGaussianNoise``.

They implement the CS-MRI data preparation and robustness test of "Hyper-Convolutions via Implicit Kernels for
Medical Imaging" (Ma, Wang, Dalca, Sabuncu), Sec. 4.3-4.4.
"""

from . import fft, noise, undersample
from .fft import *  # noqa: F403
from .noise import *  # noqa: F403
from .undersample import *  # noqa: F403

__all__ = [*fft.__all__, *undersample.__all__, *noise.__all__]
