"""Dice + cross-entropy with the voxels of one label value excluded (the WMH challenge's "other pathology").

The WMH challenge labels 1 = white matter hyperintensity and 2 = other pathology, which is neither foreground nor
background (see :class:`monai_implicit.transforms.IgnoreLabeld` for the evaluation side, as in the WMH experiment of
"NeRD: Neural Representation of Distribution for Medical Image Segmentation", Zhang et al., Sec. 3.1).  Treating those
voxels as background would teach the network that a FLAIR-bright gliotic rim is background, treating them as
foreground the opposite; :class:`MaskedDiceCELoss` leaves them out of both the Dice and the cross-entropy terms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from monai.utils import LossReduction
from torch import nn

from monai_implicit.transforms.labels import check_ignore_value
from monai_implicit.utils import check_int, check_number

__all__ = ["MaskedDiceCELoss"]


class MaskedDiceCELoss(nn.Module):
    """Dice + cross-entropy on softmax logits with the voxels of one label value excluded from both terms.

    ``loss = lambda_dice * Dice(softmax(input) * m, onehot(target) * m) + lambda_ce * mean_{m} CE(input, target)``
    where ``m = (target != ignore_value)``.  Masked voxels contribute nothing to the Dice numerator or denominator
    and are left out of the cross-entropy mean.

    Args:
        num_classes: number of output channels ``C`` (>= 2); label values must be ``< C`` apart from
            ``ignore_value``.
        ignore_value: the label value to exclude (2 for WMH with ``C = 2``).
        include_background: include channel 0 in the Dice term.
        batch: Dice over the whole batch instead of per sample (stable for sparse lesions and empty slices).
        lambda_dice, lambda_ce: weights of the two terms (>= 0).
        smooth_nr, smooth_dr: Dice smoothing, as ``monai.losses.DiceLoss``.

    Shapes: ``input (B, C, *spatial)`` logits, ``target (B, 1, *spatial)`` or ``(B, *spatial)`` integer labels;
    returns a scalar.

    Raises:
        ValueError: wrong shapes, or label values other than ``0..C-1`` and ``ignore_value``.
    """

    def __init__(
        self,
        num_classes: int = 2,
        ignore_value: int = 2,
        include_background: bool = False,
        batch: bool = True,
        lambda_dice: float = 1.0,
        lambda_ce: float = 1.0,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
    ) -> None:
        super().__init__()
        check_int(num_classes, "num_classes (softmax channels)", 2)
        for name, value in (("lambda_dice", lambda_dice), ("lambda_ce", lambda_ce), ("smooth_nr", smooth_nr),
                            ("smooth_dr", smooth_dr)):
            check_number(value, name, low=0.0)
        self.num_classes = num_classes
        self.ignore_value = check_ignore_value(ignore_value)
        self.lambda_dice = float(lambda_dice)
        self.lambda_ce = float(lambda_ce)
        self.dice = DiceLoss(
            include_background=include_background, batch=batch, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
            reduction=LossReduction.MEAN,
        )

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if input.ndim < 3 or input.shape[1] != self.num_classes:
            raise ValueError(
                f"MaskedDiceCELoss expects logits (B, {self.num_classes}, *spatial), got shape {tuple(input.shape)}."
            )
        if target.ndim == input.ndim:
            if target.shape[1] != 1:
                raise ValueError(f"target must be a label map (B, 1, *spatial), got shape {tuple(target.shape)}.")
            target = target[:, 0]
        if tuple(target.shape) != (input.shape[0], *input.shape[2:]):
            raise ValueError(
                f"target shape {tuple(target.shape)} does not match the logits {tuple(input.shape)} "
                "(expected (B, 1, *spatial) or (B, *spatial))."
            )
        target = target.long()
        keep = target != self.ignore_value
        clean = torch.where(keep, target, torch.zeros_like(target))
        if clean.numel() and (clean.min() < 0 or clean.max() >= self.num_classes):
            raise ValueError(
                f"target holds values outside 0..{self.num_classes - 1} (and the ignored {self.ignore_value}): "
                f"{torch.unique(clean).tolist()[:10]}."
            )
        m = keep.unsqueeze(1).to(input.dtype)
        loss = input.new_zeros(())
        if self.lambda_dice > 0:
            onehot = F.one_hot(clean, self.num_classes).movedim(-1, 1).to(input.dtype)
            loss = loss + self.lambda_dice * self.dice(torch.softmax(input, 1) * m, onehot * m)
        if self.lambda_ce > 0:
            ce = F.cross_entropy(input, clean, reduction="none")
            loss = loss + self.lambda_ce * (ce * m[:, 0]).sum() / m.sum().clamp_min(1.0)
        return loss
