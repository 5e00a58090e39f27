"""The threshold + largest-component baseline, on a hand-made volume and on the synthetic LiTS-like data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from monai_implicit.data import make_lits_like_case
from monai_implicit.evaluation import threshold_largest_component


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def test_largest_component_of_the_window():
    image = np.zeros((12, 12, 12), dtype=np.float32)
    image[1:7, 1:7, 1:7] = 100.0        # large blob in the window (216 voxels)
    image[3:5, 3:5, 3:5] = 10.0         # a dark hole inside it
    image[9:11, 9:11, 9:11] = 100.0     # small blob in the window
    image[0, 11, :] = 500.0             # bright, outside the window
    expected = np.zeros(image.shape, bool)
    expected[1:7, 1:7, 1:7] = True
    expected[3:5, 3:5, 3:5] = False
    got = threshold_largest_component(image, (50, 150))
    assert np.array_equal(got, expected)
    filled = threshold_largest_component(torch.from_numpy(image), (50, 150), fill_holes=True)
    assert filled.sum() == 216 and filled[3, 3, 3]
    assert not threshold_largest_component(image, (1000, 2000)).any()
    with pytest.raises(ValueError, match="window"):
        threshold_largest_component(image, (2, 1))
    with pytest.raises(ValueError, match="opening"):
        threshold_largest_component(image, (1, 2), opening=-1)


def test_lits_like_data_defeat_the_threshold_baseline():
    """Neighbours of the liver share its HU range and touch it: thresholding + largest component fails."""
    cases = [make_lits_like_case(seed) for seed in range(6)]
    liver_hu = np.concatenate([image[label == 1] for image, label, _ in cases])
    window = np.percentile(liver_hu, (5, 95))
    dices = []
    for image, label, affine in cases:
        liver = label > 0
        # a confounder: voxels outside the liver, within 5 mm of it, whose HU fall in the liver's window
        spacing = np.diag(affine)[:3]
        near = (ndimage.distance_transform_edt(~liver, sampling=spacing) <= 5.0) & ~liver
        in_window = (image >= window[0]) & (image <= window[1])
        assert (near & in_window).sum() > 0.1 * near.sum()
        dices.append(_dice(threshold_largest_component(image, window), liver))
    assert np.mean(dices) < 0.6, dices
