"""k-space transforms of the CS-MRI experiment of "Hyper-Convolutions via Implicit Kernels for Medical Imaging"
(Sec. 4.3-4.4): FFT helpers (:mod:`.fft`), mask samplers (:mod:`.masks`), undersampling (:mod:`.undersample`),
k-space noise (:mod:`.noise`), their dictionary versions (:mod:`.dictionary`) and k-space readers (:mod:`.io`).
:mod:`.array` gathers the array transforms as in MONAI."""

from . import array, dictionary, fft, io, masks, noise, undersample
from .dictionary import *  # noqa: F403
from .fft import *  # noqa: F403
from .io import *  # noqa: F403
from .masks import *  # noqa: F403
from .noise import *  # noqa: F403
from .undersample import *  # noqa: F403

__all__ = [
    *fft.__all__,
    *masks.__all__,
    *undersample.__all__,
    *noise.__all__,
    *dictionary.__all__,
    *io.__all__,
]
