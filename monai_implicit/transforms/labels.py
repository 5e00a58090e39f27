"""Ignoring a label value in the metrics (the WMH challenge's "other pathology", label 2).

The WMH challenge labels 1 = white matter hyperintensity and 2 = other pathology; label-2 voxels are neither
foreground nor background: the official evaluation removes them from the prediction and from the reference before
computing any metric (``result = result * (label != 2)``, ``reference = label == 1``).  The WMH experiment of
"NeRD: Neural Representation of Distribution for Medical Image Segmentation" (Zhang et al., Sec. 3.1, Table 1) uses
that evaluation.  :class:`IgnoreLabeld` is the post-processing transform that implements it; its training-loss
counterpart is :class:`monai_implicit.losses.MaskedDiceCELoss`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from monai_implicit.utils import check_int

__all__ = ["IgnoreLabeld", "IgnoreLabelD", "IgnoreLabelDict"]


def check_ignore_value(ignore_value: Any) -> int:
    """``ignore_value`` if it is a positive integer label value, else a ValueError naming it."""
    return check_int(ignore_value, "ignore_value")


class IgnoreLabeld(MapTransform):
    """Set the voxels labelled ``ignore_value`` in ``label_key`` to background in every key (MONAI dict transform).

    Placed after ``argmax`` and before one-hot encoding: at the voxels where the reference holds ``ignore_value`` the
    prediction and the reference both become background, so Dice, lesion-wise and surface metrics see neither a false
    positive nor a false negative there.

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
        self.ignore_value = check_ignore_value(ignore_value)

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
