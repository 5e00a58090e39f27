"""Losses: the masked Dice-CE of the WMH bundle, the dual localisation loss of the RF bundle and the alias-free
penalty of FlexConv / MAGNet kernels."""

from .aliasing import alias_free_penalty, magnet_max_frequencies
from .localization import DualLocalizationLoss, gaussian_blur_kernel
from .masked import MaskedDiceCELoss

__all__ = [
    "alias_free_penalty",
    "magnet_max_frequencies",
    "DualLocalizationLoss",
    "gaussian_blur_kernel",
    "MaskedDiceCELoss",
]
