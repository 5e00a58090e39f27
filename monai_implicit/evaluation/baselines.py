"""Trivial baselines, so that a reported Dice can be read against what needs no learning.

:func:`threshold_largest_component` is the classic non-learned liver segmentation: keep the voxels whose intensity
lies in the organ's window and take the largest connected component.  On data where that already reaches a high
Dice the task is too easy to show anything (the hyperunet_lits bundle docs report it on their embedded data).
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch
from scipy import ndimage

from monai_implicit.utils import check_int

__all__ = ["threshold_largest_component"]


def threshold_largest_component(
    image: Union[np.ndarray, torch.Tensor],
    window: Sequence[float],
    connectivity: int = 1,
    opening: int = 0,
    fill_holes: bool = False,
) -> np.ndarray:
    """Largest connected component of ``window[0] <= image <= window[1]``.

    Args:
        image: ``(*spatial)`` intensities (e.g. CT in HU).
        window: inclusive ``(low, high)`` intensity window, e.g. the 5th and 95th percentiles of the organ's voxels
            in the training data.
        connectivity: neighbourhood of the components (1: faces only, up to ``image.ndim``: full; as in
            ``scipy.ndimage.generate_binary_structure``).
        opening: iterations of a binary opening before the components are labelled (0: none); it cuts the thin
            bridges that noise builds between touching organs.
        fill_holes: fill the enclosed holes of the component (lesions darker than the window, vessels brighter).

    Returns:
        bool ``(*spatial)`` mask, all False when no voxel lies in the window.
    """
    data = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if len(window) != 2 or not all(np.isfinite(w) for w in window) or window[0] > window[1]:
        raise ValueError(f"window must be (low, high) with finite low <= high, got {window!r}.")
    check_int(connectivity, "connectivity", 1, data.ndim)
    opening = check_int(opening, "opening", 0)
    mask = (data >= window[0]) & (data <= window[1])
    if opening:
        mask = ndimage.binary_opening(mask, iterations=opening)
    if not mask.any():
        return mask
    # scipy's labelling: MONAI's get_largest_connected_component_mask needs scikit-image on the CPU
    labels, n = ndimage.label(mask, structure=ndimage.generate_binary_structure(data.ndim, connectivity))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    sizes[0] = 0
    mask = labels == int(np.argmax(sizes))
    return ndimage.binary_fill_holes(mask) if fill_holes else mask
