"""Dual localisation loss against a direct NumPy computation.

The loss of "Continuous representation of kernels used in convolutional neural networks" (Jonker, BSc thesis,
Sec. 3.4).
"""

import numpy as np
import pytest
import torch
from scipy import ndimage

from monai_implicit.losses.localization import DualLocalizationLoss, gaussian_blur_kernel


def numpy_dual_loss(pred, target, alpha=0.1, eps1=1.0, eps2=1.6, cutoff=1e-3, smooth=1e-5):
    half = int(np.floor(np.sqrt(-np.log(cutoff) / alpha)))
    g = np.exp(-alpha * np.arange(-half, half + 1) ** 2)
    blur_p, blur_t = pred.copy(), target.copy()
    for axis in range(2, pred.ndim):
        blur_p = ndimage.convolve1d(blur_p, g, axis=axis, mode="constant")
        blur_t = ndimage.convolve1d(blur_t, g, axis=axis, mode="constant")
    l1 = np.abs(blur_p - blur_t).mean()
    axes = tuple(range(2, pred.ndim))
    inter = (pred * target).sum(axis=axes)
    dice = 1 - (2 * inter + smooth) / (pred.sum(axis=axes) + target.sum(axis=axes) + smooth)
    return eps1 * l1 + eps2 * dice.mean()


@pytest.mark.parametrize("shape", [(2, 1, 64), (2, 2, 12, 9), (1, 1, 6, 7, 5)])
def test_matches_numpy(shape):
    rng = np.random.default_rng(0)
    pred = rng.random(shape)
    target = (rng.random(shape) > 0.9).astype(float)
    loss = DualLocalizationLoss()(torch.tensor(pred), torch.tensor(target))
    assert loss.item() == pytest.approx(numpy_dual_loss(pred, target), rel=1e-6)


def test_kernel_and_soft_label_behaviour():
    k = gaussian_blur_kernel(0.1)
    assert k.numel() == 17 and k[8] == 1.0 and k[0] > 1e-3 > np.exp(-0.1 * 81)
    loss = DualLocalizationLoss(eps2=0.0)
    target = torch.zeros(1, 1, 64)
    target[0, 0, 30] = 1
    near, far = torch.zeros_like(target), torch.zeros_like(target)
    near[0, 0, 31] = 1
    far[0, 0, 50] = 1
    assert loss(near, target) < loss(far, target)  # a detection one sample off costs less than a miss
    assert loss(target, target) == 0


def test_sigmoid_and_errors():
    logits = torch.randn(2, 1, 32, requires_grad=True)
    target = (torch.rand(2, 1, 32) > 0.8).float()
    value = DualLocalizationLoss(sigmoid=True)(logits, target)
    value.backward()
    assert torch.isfinite(logits.grad).all()
    assert value.item() == pytest.approx(DualLocalizationLoss()(torch.sigmoid(logits), target).item(), rel=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        DualLocalizationLoss()(torch.zeros(1, 1, 8), torch.zeros(1, 1, 9))
    with pytest.raises(ValueError, match="alpha"):
        DualLocalizationLoss(alpha=0)
    with pytest.raises(ValueError, match="eps1"):
        DualLocalizationLoss(eps1=-1)
