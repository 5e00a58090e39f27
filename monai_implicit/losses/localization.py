"""Dual localisation loss: Gaussian-blurred L1 plus Dice (Blanken et al., as used in
"Continuous representation of kernels used in convolutional neural networks", Jonker, BSc thesis, Sec. 3.4,
Fig. 5).

Micro-bubble targets are single samples; an L1 loss on them alone punishes a detection one sample off as hard as a
miss.  Blurring prediction and target with ``G(x) = exp(-alpha x^2)`` turns them into soft labels (the L1 term),
while the Dice term keeps the prediction sharp:  ``L = eps1 * L1(G * p, G * t) + eps2 * Dice(p, t)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from torch import nn
from torch.nn.modules.loss import _Loss

from monai_implicit.utils import check_number

__all__ = ["gaussian_blur_kernel", "DualLocalizationLoss"]


def gaussian_blur_kernel(alpha: float, cutoff: float = 1e-3, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The 1D kernel ``exp(-alpha x^2)`` on integer ``x``, truncated where it drops below ``cutoff``.

    Unnormalised (peak 1), as in the dual loss: a detection on the right sample keeps its full height.
    Returns a tensor of odd length ``2h + 1`` with ``h = floor(sqrt(-ln(cutoff) / alpha))``.
    """
    # an infinite alpha would give exp(-inf * 0) = NaN at the centre tap
    alpha = check_number(alpha, "alpha", low=0.0, low_open=True)
    cutoff = check_number(cutoff, "cutoff", low=0.0, high=1.0, low_open=True, high_open=True)
    half = int(math.floor(math.sqrt(-math.log(cutoff) / alpha)))
    x = torch.arange(-half, half + 1, dtype=dtype)
    return torch.exp(-alpha * x * x)


class DualLocalizationLoss(_Loss):
    """``eps1 * L1(G * p, G * t) + eps2 * Dice(p, t)`` for 1D, 2D or 3D localisation maps (Jonker thesis Sec. 3.4).

    ``G`` is the separable Gaussian ``exp(-alpha x^2)`` applied along every spatial axis with zero padding (so a
    target at the border is not favoured).  The defaults are the thesis's (alpha 0.1, eps1 1, eps2 1.6).

    Args:
        alpha: Gaussian width parameter; smaller is wider.
        eps1: weight of the blurred L1 term.
        eps2: weight of the Dice term (MONAI's DiceLoss, soft, computed per sample and averaged).
        sigmoid: apply a sigmoid to the prediction first (pass logits); otherwise the prediction must be in [0, 1].
        cutoff: truncation of the Gaussian (relative height).
        smooth_nr, smooth_dr: Dice smoothing terms (MONAI's DiceLoss).

    Shapes:
        ``input`` and ``target``: ``(B, C, *spatial)`` with 1 to 3 spatial axes; returns a scalar.
    """

    def __init__(
        self,
        alpha: float = 0.1,
        eps1: float = 1.0,
        eps2: float = 1.6,
        sigmoid: bool = False,
        cutoff: float = 1e-3,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
    ) -> None:
        super().__init__()
        eps1 = check_number(eps1, "eps1", low=0.0)
        eps2 = check_number(eps2, "eps2", low=0.0)
        if eps1 + eps2 == 0:
            raise ValueError(f"eps1 and eps2 must be non-negative and not both zero, got {eps1!r}, {eps2!r}.")
        smooth_nr = check_number(smooth_nr, "smooth_nr", low=0.0)
        smooth_dr = check_number(smooth_dr, "smooth_dr", low=0.0)
        self.eps1 = float(eps1)
        self.eps2 = float(eps2)
        self.sigmoid = sigmoid
        self.register_buffer("kernel", gaussian_blur_kernel(alpha, cutoff), persistent=False)
        self.dice = DiceLoss(sigmoid=False, smooth_nr=smooth_nr, smooth_dr=smooth_dr, batch=False)
        self.l1 = nn.L1Loss()

    def blur(self, x: torch.Tensor) -> torch.Tensor:
        """Separable Gaussian blur of ``(B, C, *spatial)`` along every spatial axis (zero padding)."""
        b, c = x.shape[:2]
        spatial = x.shape[2:]
        k = self.kernel.to(dtype=x.dtype, device=x.device)
        half = (k.numel() - 1) // 2
        out = x
        for axis in range(len(spatial)):
            moved = out.movedim(2 + axis, -1)
            shape = moved.shape
            line = moved.reshape(-1, 1, shape[-1])
            line = F.conv1d(line, k.view(1, 1, -1), padding=half)
            out = line.reshape(shape).movedim(-1, 2 + axis)
        return out.reshape(b, c, *spatial)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if input.shape != target.shape:
            raise ValueError(f"input and target must have the same shape, got {tuple(input.shape)} and "
                             f"{tuple(target.shape)}.")
        if input.ndim not in (3, 4, 5):
            raise ValueError(f"expected (B, C, *spatial) with 1 to 3 spatial axes, got shape {tuple(input.shape)}.")
        pred = torch.sigmoid(input) if self.sigmoid else input
        target = target.to(pred.dtype)
        loss = pred.new_zeros(())
        if self.eps1:
            loss = loss + self.eps1 * self.l1(self.blur(pred), self.blur(target))
        if self.eps2:
            loss = loss + self.eps2 * self.dice(pred, target)
        return loss
