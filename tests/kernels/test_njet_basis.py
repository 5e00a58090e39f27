"""Gaussian-derivative basis of N-Jet layers against scipy.ndimage and numpy's Hermite series.

Reference: "Resolution learning in deep convolutional networks using scale-space theory" (Pintea, Tomen et al.), Sec. 3.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from numpy.polynomial import hermite as npherm

from monai_implicit.kernels.gaussian_derivatives import (
    GaussianDerivativeBasis,
    derivative_orders,
    gaussian_derivatives_1d,
    hermite_polynomials,
    njet_kernel_size,
)


def scipy_basis_filter(sigma_vox: tuple[float, ...], orders: tuple[int, ...], halves: tuple[int, ...]) -> np.ndarray:
    """Impulse response of scipy.ndimage.gaussian_filter times sigma^order, on the grid -h..h of every axis.

    scipy's support has radius int(truncate * sigma + 0.5); truncate is chosen so that radius equals our
    half-size exactly (scipy normalises its Gaussian on that same support), and the impulse sits in an array of
    exactly that support, so both kernels are compared tap by tap.
    """
    impulse = np.zeros([2 * h + 1 for h in halves])
    impulse[tuple(halves)] = 1.0
    out = impulse
    for axis, (s, n, h) in enumerate(zip(sigma_vox, orders, halves)):
        truncate = (h + 0.25) / s  # int(truncate * s + 0.5) == h
        assert int(truncate * s + 0.5) == h
        out = ndi.gaussian_filter1d(out, s, axis=axis, order=n, mode="constant", truncate=truncate) * s**n
    return out


@pytest.mark.parametrize("sigma, size", [(0.5, 5), (1.0, 7), (2.0, 11), (4.0, 19)])
def test_kernel_sizes_at_k2(sigma, size):
    assert njet_kernel_size(sigma, k=2) == size
    for dims in (1, 2, 3):
        basis = GaussianDerivativeBasis(dims, order=2, k=2)
        assert basis.kernel_size(sigma) == (size,) * dims
        assert tuple(basis(sigma).shape[1:]) == (size,) * dims


@pytest.mark.parametrize(
    "dims, order, sigma", [(1, 4, 0.7), (1, 6, 2.3), (2, 4, 1.0), (2, 3, 1.7), (2, 2, 4.0), (3, 3, 1.3), (3, 2, 0.6)]
)
def test_basis_equals_scipy_gaussian_filter_of_impulse(dims, order, sigma):
    basis = GaussianDerivativeBasis(dims, order=order)
    dense = basis(torch.tensor(sigma, dtype=torch.float64)).numpy()
    halves = basis.half_sizes(sigma)
    assert dense.shape[0] == math.comb(order + dims, dims)
    for f, orders in enumerate(basis.orders):
        expected = scipy_basis_filter((sigma,) * dims, orders, halves)
        np.testing.assert_allclose(dense[f], expected, rtol=0, atol=1e-6, err_msg=f"derivative {orders}")


def test_basis_float32_close_to_scipy():
    basis = GaussianDerivativeBasis(2, order=3)
    dense = basis(torch.tensor(1.4)).numpy()
    for f, orders in enumerate(basis.orders):
        np.testing.assert_allclose(dense[f], scipy_basis_filter((1.4, 1.4), orders, basis.half_sizes(1.4)), atol=1e-6)


def test_anisotropic_spacing_matches_scipy_in_voxels():
    spacing = (1.0, 0.5, 2.5)
    sigma = 1.5  # millimetres: 1.5, 3 and 0.6 voxels
    basis = GaussianDerivativeBasis(3, order=2, spacing=spacing)
    halves = basis.half_sizes(sigma)
    assert basis.kernel_size(sigma) == (9, 15, 5)
    dense = basis(torch.tensor(sigma, dtype=torch.float64)).numpy()
    sigma_vox = tuple(sigma / s for s in spacing)
    for f, orders in enumerate(basis.orders):
        np.testing.assert_allclose(dense[f], scipy_basis_filter(sigma_vox, orders, halves), atol=1e-6)


@pytest.mark.parametrize("order", [10, 11, 12, 15])
def test_high_orders_match_scipy_1d(order):
    sigma = 2.0
    half = math.ceil(2 * sigma + 0.5)
    table = gaussian_derivatives_1d(torch.tensor(sigma, dtype=torch.float64), order, half).numpy()
    assert table.shape == (order + 1, 2 * half + 1)
    for n in range(order + 1):
        expected = scipy_basis_filter((sigma,), (n,), (half,))
        np.testing.assert_allclose(table[n], expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


def test_order_12_basis_2d_finite_and_matches_scipy():
    basis = GaussianDerivativeBasis(2, order=12)
    dense = basis(torch.tensor(1.0, dtype=torch.float64)).numpy()
    assert dense.shape == (91, 7, 7) and np.isfinite(dense).all()
    for orders in [(12, 0), (5, 7), (0, 12), (6, 6)]:
        f = basis.orders.index(orders)
        expected = scipy_basis_filter((1.0, 1.0), orders, (3, 3))
        np.testing.assert_allclose(dense[f], expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


def test_hermite_recursion_matches_numpy():
    x = torch.linspace(-4, 4, 41, dtype=torch.float64)
    table = hermite_polynomials(x, 14).numpy()
    for n in range(15):
        coef = np.zeros(n + 1)
        coef[n] = 1.0
        np.testing.assert_allclose(table[n], npherm.hermval(x.numpy(), coef), rtol=1e-12, atol=1e-9)


def test_zeroth_order_sums_to_one_and_odd_orders_are_antisymmetric():
    table = gaussian_derivatives_1d(torch.tensor(1.7, dtype=torch.float64), 5, 5)
    assert abs(float(table[0].sum()) - 1.0) < 1e-12
    for n in range(6):
        np.testing.assert_allclose(table[n].flip(0).numpy(), ((-1) ** n) * table[n].numpy(), atol=1e-15)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_derivative_orders_count_and_nesting(dims):
    for order in range(6):
        orders = derivative_orders(order, dims)
        assert len(orders) == math.comb(order + dims, dims) == len(set(orders))
        assert all(sum(c) <= order and len(c) == dims for c in orders)
        assert orders[: math.comb(order - 1 + dims, dims)] == derivative_orders(order - 1, dims) if order else True
    assert derivative_orders(2, 2) == [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2)]


def test_sigma_gradient_matches_finite_differences_at_fixed_size():
    basis = GaussianDerivativeBasis(2, order=3)
    weights = torch.randn(10, 7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sigma0, h = 1.1, 1e-6  # kernel size 7 on both sides of the difference
    assert basis.kernel_size(sigma0 - h) == basis.kernel_size(sigma0 + h) == (7, 7)

    def loss(s: torch.Tensor) -> torch.Tensor:
        return (basis(s) * weights).sum()

    sigma = torch.tensor(sigma0, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(loss(sigma), sigma)
    fd = (loss(torch.tensor(sigma0 + h, dtype=torch.float64)) - loss(torch.tensor(sigma0 - h, dtype=torch.float64)))
    fd = fd / (2 * h)
    assert abs(float(grad) - float(fd)) < 1e-6 * max(1.0, abs(float(fd)))
    assert abs(float(grad)) > 1e-3  # a real dependence on sigma, not a vanishing gradient


def test_not_scale_normalized_is_the_plain_derivative():
    sigma = 2.0
    table = gaussian_derivatives_1d(torch.tensor(sigma, dtype=torch.float64), 3, 5, scale_normalized=False).numpy()
    impulse = np.zeros(11)
    impulse[5] = 1.0
    for n in range(4):
        expected = ndi.gaussian_filter1d(impulse, sigma, order=n, mode="constant", truncate=5.25 / sigma)
        np.testing.assert_allclose(table[n], expected, atol=1e-12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="order must be >= 0"):
        GaussianDerivativeBasis(2, order=-1)
    with pytest.raises(TypeError, match="order must be an int"):
        GaussianDerivativeBasis(2, order=2.0)
    with pytest.raises(ValueError, match="spatial_dims"):
        GaussianDerivativeBasis(4, order=2)
    basis = GaussianDerivativeBasis(2, order=2, max_kernel_size=11)
    for bad in (0.0, -1.0, float("nan"), torch.tensor(-0.5)):
        with pytest.raises(ValueError, match="sigma must be a positive"):
            basis(bad)
    with pytest.raises(ValueError, match="larger than max_kernel_size=11"):
        basis(2.5)
    assert basis(2.0).shape == (6, 11, 11)
    with pytest.raises(ValueError, match="scalar"):
        basis(torch.ones(2))
    with pytest.raises(ValueError, match="sigma must be positive"):
        gaussian_derivatives_1d(torch.tensor(0.0), 2, 3)
    with pytest.raises(ValueError, match="order must be >= 0"):
        derivative_orders(-2, 2)
    with pytest.raises(ValueError, match="spacing"):
        GaussianDerivativeBasis(2, spacing=(1.0, -1.0))
