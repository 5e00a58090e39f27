"""SirenKernel: exact SIREN initialisation, omega_0 validation, forward against a NumPy re-implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from monai_implicit.kernels.siren import SirenKernel


def _effective_weight(layer: torch.nn.Linear) -> np.ndarray:
    return layer.weight.detach().double().numpy()  # recomputed from (g, v) under weight normalisation


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
@pytest.mark.parametrize("omega_0", [30.0, 8.0])
def test_siren_init_bounds_and_uniformity(spatial_dims, omega_0):
    torch.manual_seed(0)
    net = SirenKernel(spatial_dims, 16, 16, 9, omega_0=omega_0, hidden=64, num_layers=3)
    first = _effective_weight(net.sines[0])
    bound = 1.0 / spatial_dims
    assert np.abs(first).max() <= bound
    assert stats.kstest(first.ravel(), stats.uniform(-bound, 2 * bound).cdf).pvalue > 1e-3
    for layer in [*net.sines[1:], net.out]:
        w = _effective_weight(layer)
        bound = math.sqrt(6.0 / layer.in_features) / omega_0
        assert np.abs(w).max() <= bound
        assert np.abs(w).max() > 0.95 * bound  # the whole range is used, not a narrower init
        assert stats.kstest(w.ravel(), stats.uniform(-bound, 2 * bound).cdf).pvalue > 1e-3
        # the KS test has power: the same weights are not U(-2 bound, 2 bound)
        assert stats.kstest(w.ravel(), stats.uniform(-2 * bound, 4 * bound).cdf).pvalue < 1e-3


def test_weight_norm_keeps_the_siren_init():
    torch.manual_seed(3)
    plain = SirenKernel(1, 4, 5, 65, omega_0=30.0)
    torch.manual_seed(3)
    normed = SirenKernel(1, 4, 5, 65, omega_0=30.0, weight_norm=True)
    assert any("parametrizations" in name for name, _ in normed.named_parameters())
    for a, b in zip([*plain.sines, plain.out], [*normed.sines, normed.out]):
        np.testing.assert_allclose(_effective_weight(b), _effective_weight(a), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(normed(), plain(), rtol=1e-5, atol=1e-6)


def test_forward_matches_numpy_siren_on_the_unit_grid():
    torch.manual_seed(1)
    net = SirenKernel(2, 3, 2, (5, 4), omega_0=20.0, hidden=8)
    params = {n: p.detach().double().numpy() for n, p in net.named_parameters()}
    xs, ys = np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 4), indexing="ij")
    expected = np.zeros((2, 3, 5, 4))
    for i in range(5):
        for j in range(4):
            h = np.array([xs[i, j], ys[i, j]])
            for layer in range(2):
                h = np.sin(20.0 * (params[f"sines.{layer}.weight"] @ h + params[f"sines.{layer}.bias"]))
            out = params["out.weight"] @ h + params["out.bias"]
            expected[:, :, i, j] = out.reshape(2, 3)
    np.testing.assert_allclose(net().detach().double().numpy(), expected, rtol=1e-4, atol=1e-5)
    # explicit coordinates give the same kernel; any grid shape works
    grid = torch.stack(torch.meshgrid(torch.linspace(-1, 1, 5), torch.linspace(-1, 1, 4), indexing="ij"))
    torch.testing.assert_close(net(grid), net())
    assert net(torch.zeros(2, 7)).shape == (2, 3, 7)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_omega_0_must_be_positive_and_finite(bad):
    with pytest.raises(ValueError, match="omega_0"):
        SirenKernel(1, 1, 1, 9, omega_0=bad)


@pytest.mark.parametrize("bad", ["30", True, None])
def test_omega_0_must_be_a_number(bad):
    with pytest.raises(TypeError, match="omega_0"):
        SirenKernel(1, 1, 1, 9, omega_0=bad)


def test_bad_arguments():
    with pytest.raises(ValueError, match="hidden"):
        SirenKernel(1, 1, 1, 9, hidden=0)
    with pytest.raises(ValueError, match="spatial_dims"):
        SirenKernel(4, 1, 1, 9)
    with pytest.raises(ValueError, match="coords"):
        SirenKernel(2, 1, 1, 9)(torch.zeros(3, 5))
