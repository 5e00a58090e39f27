"""alias_free_penalty against its formula (FlexConv paper, Eqs. 21-27) computed here with NumPy loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from monai_implicit.layers.ckconv import CKConv
from monai_implicit.layers.flexconv import FlexConv
from monai_implicit.losses.aliasing import alias_free_penalty


def _formula(layers, sigma_cut=2.0, include_mask=True) -> float:
    total = 0.0
    for layer in layers:
        filters = layer.kernel_net.filters
        n_filters = len(filters)
        sigma = layer.mask_sigma.detach().double().numpy() if isinstance(layer, FlexConv) else None
        for gabor in filters:
            w = gabor.linear.weight.detach().double().numpy()  # (H, D)
            gamma = gabor.gamma.detach().double().numpy()
            for d, k in enumerate(layer.kernel_size):
                f = max(abs(w[i, d]) / (2 * math.pi) + sigma_cut * abs(gamma[i, d]) / (2 * math.pi)
                        for i in range(w.shape[0]))
                if include_mask and sigma is not None:
                    f += sigma_cut / (2 * math.pi * sigma[d]) / n_filters
                nyquist = (k - 1) / 4.0
                total += max(f - nyquist / n_filters, 0.0) ** 2
    return total


def test_penalty_equals_formula_over_all_layers():
    torch.manual_seed(0)
    layers = [FlexConv(2, 2, 3, (33, 17)), FlexConv(3, 1, 1, (9, 9, 5), mask_init=0.3),
              CKConv(1, 2, 2, 65, kernel="magnet"), FlexConv(1, 1, 1, 129, kernel_kwargs={"input_scale": 3.0})]
    net = torch.nn.ModuleList([*layers, CKConv(1, 2, 2, 9)])  # the SIREN CKConv is not part of the penalty
    value = alias_free_penalty(net)
    assert value.ndim == 0
    np.testing.assert_allclose(value.item(), _formula(layers), rtol=1e-5)
    np.testing.assert_allclose(alias_free_penalty(net, include_mask=False).item(),
                               _formula(layers, include_mask=False), rtol=1e-5)
    np.testing.assert_allclose(alias_free_penalty(net, sigma_cut=1.0).item(), _formula(layers, sigma_cut=1.0),
                               rtol=1e-5)


def test_1d_equals_the_authors_together_mask_regulariser():
    # the authors' code (1D): per filter max over (units) of |W|/2pi + sigma_cut |gamma|/2pi, plus the mask term
    # sigma_cut / (2 pi s) spread over the filters, against nyquist / n_filters; sum of squared ReLU
    torch.manual_seed(1)
    layer = FlexConv(1, 3, 3, 33, mask_init=0.1)
    n = len(layer.kernel_net.filters)
    mask = 2.0 / layer.mask_sigma.item() / (2 * math.pi) / n
    terms = []
    for f in layer.kernel_net.filters:
        combined = (f.linear.weight / (2 * math.pi)).abs() + (f.gamma * 2.0 / (2 * math.pi)).abs()
        terms.append(combined.max().item() + mask)
    expected = sum(max(t - (33 - 1) / 4 / n, 0.0) ** 2 for t in terms)
    assert alias_free_penalty(layer).item() == pytest.approx(expected, rel=1e-5)


def test_penalty_is_differentiable_and_descends():
    torch.manual_seed(2)
    layer = FlexConv(2, 1, 2, 17)
    value = alias_free_penalty(layer)
    assert value.item() > 0
    value.backward()
    for name in ("kernel_net.filters.0.linear.weight", "kernel_net.filters.0.gamma", "mask_rho"):
        grad = dict(layer.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    start = value.item()
    with torch.no_grad():  # a small step against the gradient lowers it
        for p in layer.parameters():
            if p.grad is not None:
                p -= 1e-4 * p.grad
    assert alias_free_penalty(layer).item() < start


def test_zero_below_nyquist():
    layer = FlexConv(1, 1, 1, 2001, kernel_kwargs={"input_scale": 1.0}, mask_init=0.5)
    assert alias_free_penalty(layer).item() == 0.0


def test_bad_input():
    with pytest.raises(ValueError, match="no FlexConv"):
        alias_free_penalty(torch.nn.Conv2d(1, 1, 3))
    with pytest.raises(ValueError, match="no FlexConv"):
        alias_free_penalty(CKConv(1, 1, 1, 9))
    with pytest.raises(ValueError, match="MAGNet"):
        alias_free_penalty(FlexConv(1, 1, 1, 9, kernel="siren"))
    with pytest.raises(ValueError, match="sigma_cut"):
        alias_free_penalty(FlexConv(1, 1, 1, 9), sigma_cut=0)
