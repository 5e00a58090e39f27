"""Ignoring a label value in the loss and in the metrics (WMH challenge "other pathology", label 2).

The WMH challenge labels 1 = white matter hyperintensity and 2 = other pathology; label-2 voxels are neither
foreground nor background: the official evaluation removes them from the prediction and from the reference before
computing any metric (``result = result * (label != 2)``, ``reference = label == 1``).  NeRD's WMH experiment
(seeds/001 Sec. 3.1, Table 1) uses that evaluation.  Two pieces implement it for a bundle:

* :class:`IgnoreLabeld`, a post-processing transform placed after ``argmax`` and before one-hot encoding: at the
  voxels where the reference holds ``ignore_value`` the prediction and the reference both become background, so
  Dice, lesion-wise and surface metrics see neither a false positive nor a false negative there;
* :class:`MaskedDiceCELoss`, the training loss with those voxels excluded from both the Dice and the cross-entropy
  terms (treating them as background would teach the network that a FLAIR-bright gliotic rim is background, treating
  them as foreground the opposite; the challenge says neither).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.losses import DiceLoss
from monai.transforms import MapTransform
from monai.utils import LossReduction
from torch import nn

from monai_implicit.utils import check_number

__all__ = ["IgnoreLabeld", "IgnoreLabelD", "IgnoreLabelDict", "MaskedDiceCELoss"]


def _check_ignore_value(ignore_value: Any) -> int:
    if isinstance(ignore_value, bool) or not isinstance(ignore_value, int) or ignore_value < 1:
        raise ValueError(f"ignore_value must be a positive integer label value, got {ignore_value!r}.")
    return ignore_value


class IgnoreLabeld(MapTransform):
    """Set the voxels labelled ``ignore_value`` in ``label_key`` to background in every key (MONAI dict transform).

    Args:
        keys: the keys to clean, e.g. ``["pred", "label"]`` (the label key itself is normally one of them).
        label_key: the reference label map ``(1, *spatial)`` holding ``ignore_value`` (read before any key is
            changed, so the order of ``keys`` does not matter).
        ignore_value: the label value to ignore (2 for WMH).
        allow_missing_keys: do not raise if a key is absent.

    Shapes: every key is ``(1, *spatial)`` (a label map: ignored voxels become 0) or ``(C, *spatial)`` with
    ``C > 1`` (one-hot or probabilities: ignored voxels become ``[1, 0, ..., 0]``, i.e. background); the spatial
    shape must be that of the label.  MetaTensors keep their meta data.

    Raises:
        ValueError: a key's spatial shape differs from the label's, or the label has more than one channel.
    """

    def __init__(
        self, keys: KeysCollection, label_key: str = "label", ignore_value: int = 2, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.label_key = label_key
        self.ignore_value = _check_ignore_value(ignore_value)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if self.label_key not in d:
            raise KeyError(f"IgnoreLabeld: the reference key {self.label_key!r} is missing (keys: {list(d)}).")
        label = torch.as_tensor(d[self.label_key])
        if label.ndim < 2 or label.shape[0] != 1:
            raise ValueError(
                f"IgnoreLabeld expects the reference {self.label_key!r} as a label map (1, *spatial), "
                f"got shape {tuple(label.shape)}."
            )
        ignored = label[0] == self.ignore_value
        for key in self.key_iterator(d):
            value = d[key]
            if tuple(value.shape[1:]) != tuple(ignored.shape):
                raise ValueError(
                    f"IgnoreLabeld: {key!r} has spatial shape {tuple(value.shape[1:])}, the reference "
                    f"{self.label_key!r} {tuple(ignored.shape)}."
                )
            out = value.clone() if isinstance(value, torch.Tensor) else torch.as_tensor(value).clone()
            mask = ignored.to(out.device)
            if out.shape[0] == 1:
                out[0][mask] = 0
            else:
                out[:, mask] = 0
                out[0][mask] = 1
            d[key] = out
        return d


IgnoreLabelD = IgnoreLabelDict = IgnoreLabeld


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
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2 (softmax channels), got {num_classes!r}.")
        for name, value in (("lambda_dice", lambda_dice), ("lambda_ce", lambda_ce), ("smooth_nr", smooth_nr),
                            ("smooth_dr", smooth_dr)):
            check_number(value, name, low=0.0)
        self.num_classes = num_classes
        self.ignore_value = _check_ignore_value(ignore_value)
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
