"""k-space transforms: undersampling masks, retrospective undersampling, k-space noise (seed 000, §4.3-4.4)."""

from . import array, dictionary, masks
from .array import *  # noqa: F403
from .dictionary import *  # noqa: F403
from .masks import *  # noqa: F403

__all__ = [*array.__all__, *dictionary.__all__, *masks.__all__]
