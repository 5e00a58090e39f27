"""MAGNetKernel: published initialisation statistics (KS tests), parameter count, Eqs. 2-7 against NumPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from monai_implicit.kernels.magnet import MAGNetKernel

P_ACCEPT = 1e-3


@pytest.fixture(scope="module")
def wide_net() -> MAGNetKernel:
    # many hidden units so every per-filter distribution has 2 * 400 samples
    torch.manual_seed(0)
    return MAGNetKernel(2, 2, 2, 33, hidden=400, num_layers=3, input_scale=25.6, alpha=6.0, beta=1.0,
                        init_spatial_value=0.5)


def test_gamma_follows_gamma_alpha_over_l_plus_1(wide_net):
    for layer, gabor in enumerate(wide_net.filters):
        gamma = gabor.gamma.detach().double().numpy().ravel()
        shape = 6.0 / (layer + 1)
        assert stats.kstest(gamma, stats.gamma(a=shape, scale=1.0).cdf).pvalue > P_ACCEPT
        # power: Fathony et al.'s per-network shape alpha / L is rejected for the first filter
        if layer == 0:
            assert stats.kstest(gamma, stats.gamma(a=6.0 / 3, scale=1.0).cdf).pvalue < P_ACCEPT


def test_mu_bias_and_frequency_init(wide_net):
    n_filters = len(wide_net.filters)
    for gabor in wide_net.filters:
        mu = gabor.mu.detach().double().numpy().ravel()
        assert stats.kstest(mu, stats.uniform(-0.5, 1.0).cdf).pvalue > P_ACCEPT
        b = gabor.linear.bias.detach().double().numpy()
        assert stats.kstest(b, stats.uniform(-math.pi, 2 * math.pi).cdf).pvalue > P_ACCEPT
        # W_g = U(-1/sqrt(D), 1/sqrt(D)) * input_scale / sqrt(L + 1) * gamma, per unit and axis
        base = (gabor.linear.weight / (25.6 / math.sqrt(n_filters) * gabor.gamma)).detach().double().numpy().ravel()
        bound = 1.0 / math.sqrt(2)
        assert stats.kstest(base, stats.uniform(-bound, 2 * bound).cdf).pvalue > P_ACCEPT
    for lin in wide_net.linears:
        w = lin.weight.detach().double().numpy().ravel()
        bound = math.sqrt(1.0 / 400)
        assert np.abs(w).max() <= bound
        assert stats.kstest(w, stats.uniform(-bound, 2 * bound).cdf).pvalue > P_ACCEPT


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
def test_parameter_count_formula(spatial_dims):
    c_in, c_out, h, L = 3, 5, 32, 3
    net = MAGNetKernel(spatial_dims, c_in, c_out, 9, hidden=h, num_layers=L)
    expected = (L + 1) * (3 * h * spatial_dims + h) + L * (h * h + h) + (h + 1) * c_in * c_out
    assert sum(p.numel() for p in net.parameters()) == expected


def test_forward_matches_numpy_magnet_anisotropic_3d():
    torch.manual_seed(2)
    size = (5, 3, 4)
    net = MAGNetKernel(3, 2, 3, size, hidden=6, num_layers=2)
    P = {n: p.detach().double().numpy() for n, p in net.named_parameters()}
    axes = [np.linspace(-1, 1, k) for k in size]
    expected = np.zeros((3, 2, *size))
    for idx in np.ndindex(*size):
        x = np.array([axes[d][i] for d, i in enumerate(idx)])

        def gabor(layer, x=x):
            pre = f"filters.{layer}."
            env = np.exp(-0.5 * ((P[pre + "gamma"] * (x - P[pre + "mu"])) ** 2).sum(1))
            return env * np.sin(P[pre + "linear.weight"] @ x + P[pre + "linear.bias"])

        h = gabor(0)
        for layer in range(1, 3):
            h = (P[f"linears.{layer - 1}.weight"] @ h + P[f"linears.{layer - 1}.bias"]) * gabor(layer)
        expected[(slice(None), slice(None), *idx)] = (P["out.weight"] @ h + P["out.bias"]).reshape(3, 2)
    out = net()
    assert out.shape == (3, 2, *size)
    np.testing.assert_allclose(out.detach().double().numpy(), expected, rtol=1e-4, atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="input_scale"):
        MAGNetKernel(2, 1, 1, 9, input_scale=0.0)
    with pytest.raises(ValueError, match="num_layers"):
        MAGNetKernel(2, 1, 1, 9, num_layers=0)
    with pytest.raises(ValueError, match="coords"):
        MAGNetKernel(2, 1, 1, 9)(torch.zeros(1, 9))
