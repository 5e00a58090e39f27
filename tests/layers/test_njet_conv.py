"""NJetConv: both execution paths against scipy, sigma parameterisation, init, errors.

Reference: "Resolution learning in deep convolutional networks using scale-space theory" (Pintea, Tomen et al.), Sec. 3.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from torch import nn

from monai_implicit.layers import autotune
from monai_implicit.layers.njet import NJetConv, njet_param_groups, sigmas


def scipy_filter(sigma: float, orders: tuple[int, ...], half: int) -> np.ndarray:
    """Impulse response of scipy.ndimage.gaussian_filter times sigma^order on the grid -half..half."""
    impulse = np.zeros([2 * half + 1] * len(orders))
    impulse[(half,) * len(orders)] = 1.0
    truncate = (half + 0.25) / sigma  # scipy radius int(truncate * sigma + 0.5) == half
    return ndi.gaussian_filter(impulse, sigma, order=orders, mode="constant", truncate=truncate) * sigma ** sum(orders)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("path", ["dense", "separable"])
def test_output_equals_scipy_correlation_with_the_basis(dims, path):
    """One input channel, one output channel per basis filter (alpha = identity): output = scipy correlate."""
    order, sigma = 2, 1.3
    layer = NJetConv(dims, 1, math.comb(order + dims, dims), order=order, init_sigma=sigma, bias=False, path=path)
    layer = layer.double()
    with torch.no_grad():
        layer.alpha.copy_(torch.eye(layer.alpha.shape[0], dtype=torch.float64)[:, None, :])
    x = torch.randn(1, 1, *[15, 12, 9][:dims], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = layer(x)[0].detach().numpy()
    half = layer.basis.half_sizes(sigma)[0]
    for f, orders in enumerate(layer.basis.orders):
        expected = ndi.correlate(x[0, 0].numpy(), scipy_filter(sigma, orders, half), mode="constant")
        np.testing.assert_allclose(out[f], expected, atol=1e-10, err_msg=f"derivative {orders}")


@pytest.mark.parametrize(
    "dims, groups, padding_mode, stride, dilation, order",
    [
        (1, 1, "zeros", 1, 1, 3),
        (1, 2, "reflect", 2, 1, 4),
        (2, 1, "zeros", 1, 1, 2),
        (2, 1, "reflect", 2, 1, 0),
        (2, 2, "circular", 1, 2, 3),
        (2, 1, "replicate", 3, 2, 1),
        (3, 1, "zeros", 1, 1, 2),
        (3, 2, "reflect", 2, 1, 2),
        (3, 1, "zeros", 1, 2, 4),
    ],
)
def test_dense_equals_separable(dims, groups, padding_mode, stride, dilation, order):
    torch.manual_seed(0)
    layer = NJetConv(dims, 4, 6, order=order, init_sigma=1.2, groups=groups, padding_mode=padding_mode,
                     stride=stride, dilation=dilation).double()
    x = torch.randn(2, 4, *[17, 14, 11][:dims], dtype=torch.float64, requires_grad=True)
    results = []
    for path in ("dense", "separable"):
        layer.path = path
        out = layer(x)
        grads = torch.autograd.grad((out * torch.cos(out)).sum(), [x, layer.alpha, layer.raw_sigma, layer.bias])
        results.append((out, grads))
    (dense, g_dense), (sep, g_sep) = results
    assert dense.shape == sep.shape == (2, 6, *[math.ceil(s / stride) for s in [17, 14, 11][:dims]])
    torch.testing.assert_close(sep, dense, rtol=0, atol=1e-11)
    for a, b in zip(g_sep, g_dense):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_to_conv_and_eval_cache_match():
    torch.manual_seed(1)
    layer = NJetConv(2, 3, 5, order=3, init_sigma=1.6).eval()
    x = torch.randn(2, 3, 20, 16)
    with torch.no_grad():
        ref = layer(x)
        w1 = layer.weight
        assert layer.weight is w1  # cached
        torch.testing.assert_close(layer.to_conv()(x), ref, atol=1e-5, rtol=1e-5)
    assert layer.to_conv().weight.shape == (5, 3, 9, 9)


def test_sigma_init_is_exact_and_kernel_follows_sigma():
    for init in (0.7, 1.0, 1.3, 2.0, 3.3):
        layer = NJetConv(2, 2, 2, init_sigma=init)
        assert layer.sigma.item() == torch.tensor(init, dtype=torch.float32).item()
    layer = NJetConv(2, 2, 3, init_sigma=1.0)
    assert layer.kernel_size == (7, 7) and layer.weight.shape == (3, 2, 7, 7)
    for target, size in ((0.6, 5), (2.0, 11), (4.0, 19)):
        lo_raw, hi_raw = -30.0, 30.0  # bisection on the monotone map raw -> sigma
        with torch.no_grad():
            for _ in range(80):
                mid = 0.5 * (lo_raw + hi_raw)
                layer.raw_sigma.fill_(mid)
                lo_raw, hi_raw = (mid, hi_raw) if layer.sigma.item() < target else (lo_raw, mid)
        assert layer.sigma.item() == pytest.approx(target, rel=1e-5)
        assert layer.kernel_size == (size, size)
        assert layer.weight.shape == (3, 2, size, size)
        assert layer(torch.randn(1, 2, 24, 24)).shape == (1, 3, 24, 24)
        assert sigmas(layer) == [("", pytest.approx(target, rel=1e-5), (size, size))]


def test_sigma_gradient_matches_finite_differences_through_the_layer():
    torch.manual_seed(2)
    layer = NJetConv(2, 2, 3, order=3, init_sigma=1.15).double()
    x = torch.randn(2, 2, 16, 16, dtype=torch.float64)
    r = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    h = 1e-6

    def loss() -> torch.Tensor:
        return (layer(x) * r).sum()

    for path in ("dense", "separable"):
        layer.path = path
        (grad_raw,) = torch.autograd.grad(loss(), layer.raw_sigma)
        sizes = []
        with torch.no_grad():
            values = []
            for sign in (1, -1):
                layer.raw_sigma.fill_(sign * h)
                sizes.append(layer.kernel_size)
                values.append(loss())
            layer.raw_sigma.fill_(0.0)
        assert sizes[0] == sizes[1] == (7, 7)  # the size is fixed across the difference
        fd = (values[0] - values[1]) / (2 * h)
        assert float(grad_raw) == pytest.approx(float(fd), rel=1e-6, abs=1e-8)
        assert abs(float(fd)) > 1e-3  # a real dependence on sigma


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_sigma_stays_in_range_under_huge_steps(optimizer, direction):
    torch.manual_seed(3)
    layer = NJetConv(2, 1, 2, order=2, init_sigma=1.0, sigma_range=(0.5, 4.0))
    # huge steps on the scale; alphas at an ordinary rate so the filters stay finite
    groups = njet_param_groups(layer, lr=1e-3, sigma_lr_factor=1e9 if optimizer == "sgd" else 5e4)
    opt = torch.optim.SGD(groups) if optimizer == "sgd" else torch.optim.Adam(groups)
    x = torch.randn(1, 1, 16, 16)
    seen = []
    for _ in range(8):
        loss = direction * layer.sigma * 1e3 + layer(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sigma = layer.sigma.item()
        seen.append(sigma)
        assert math.isfinite(sigma) and 0.5 <= sigma <= 4.0
        assert max(layer.kernel_size) <= layer.max_kernel_size == 19
        assert torch.isfinite(layer(x)).all()
    assert (seen[-1] < 0.6) if direction > 0 else (seen[-1] > 3.5)  # it did move to the bound it was pushed to


def test_alpha_init_gives_fan_in_variance():
    torch.manual_seed(4)
    c_in, c_out = 48, 64
    for init, target in (("fan_in", lambda fan: 1 / (3 * fan)), ("he", lambda fan: 2 / fan)):
        layer = NJetConv(2, c_in, c_out, order=2, init_sigma=1.0, init=init)
        w = layer.weight.detach()
        fan_in = c_in * 49
        # mean over taps of the weight variance over filters
        assert w.pow(2).mean().item() == pytest.approx(target(fan_in), rel=0.1)
    # and the same output variance as PyTorch's default nn.Conv2d of that kernel size on white noise
    layer = NJetConv(2, c_in, c_out, order=2, init_sigma=1.0, bias=False)
    conv = nn.Conv2d(c_in, c_out, 7, padding=3, bias=False)
    x = torch.randn(4, c_in, 32, 32)
    with torch.no_grad():
        ratio = layer(x)[..., 3:-3, 3:-3].var().item() / conv(x)[..., 3:-3, 3:-3].var().item()
    assert ratio == pytest.approx(1.0, rel=0.15)


def test_orders_up_to_12_work_in_the_layer():
    torch.manual_seed(5)
    for dims, order in ((1, 12), (2, 12), (3, 6)):
        layer = NJetConv(dims, 2, 3, order=order, init_sigma=1.0).double()
        x = torch.randn(1, 2, *[12] * dims, dtype=torch.float64)
        layer.path = "dense"
        dense = layer(x)
        layer.path = "separable"
        sep = layer(x)
        assert torch.isfinite(dense).all()
        torch.testing.assert_close(sep, dense, rtol=1e-9, atol=1e-9)
        assert layer.alpha.shape == (3, 2, math.comb(order + dims, dims))
        # initial filters keep the fan-in variance even at high order (every basis filter contributes equally)
        assert layer.weight.pow(2).sum((-1,) if dims == 1 else tuple(range(2, 2 + dims))).mean().item() < 1.0


def test_auto_path_uses_the_cost_estimate_when_not_measuring():
    small = NJetConv(2, 1, 4, order=2, init_sigma=1.0)
    big = NJetConv(3, 16, 16, order=2, init_sigma=2.0)
    with autotune.autotuning(False):
        assert not small.use_separable(torch.zeros(8, 1, 32, 32))
        assert big.use_separable(torch.zeros(1, 16, 32, 32, 32))
    dense, separable = big.estimated_costs(torch.zeros(1, 16, 32, 32, 32), big.kernel_shape())
    assert dense == 16 * 16 * 11**3 * 32**3 and separable < dense


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_dense_equals_separable_every_order_with_depthwise_groups(dims, order):
    torch.manual_seed(6)
    layer = NJetConv(dims, 4, 8, order=order, init_sigma=0.9, groups=4).double()
    x = torch.randn(3, 4, *[13, 10, 9][:dims], dtype=torch.float64, requires_grad=True)
    results = []
    for path in ("dense", "separable"):
        layer.path = path
        out = layer(x)
        results.append((out, torch.autograd.grad(out.pow(2).sum(), [x, layer.alpha, layer.raw_sigma])))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=0, atol=1e-11)
    for a, b in zip(results[1][1], results[0][1]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_learn_sigma_false_and_param_groups():
    frozen = NJetConv(2, 2, 2, init_sigma=2.0, learn_sigma=False)
    assert not frozen.raw_sigma.requires_grad
    net = nn.Sequential(NJetConv(2, 1, 2), nn.ReLU(), NJetConv(2, 2, 2), frozen)
    groups = njet_param_groups(net, lr=1e-3, sigma_lr_factor=10.0)
    assert [len(g["params"]) for g in groups] == [7, 2]  # the frozen scale stays with the others
    assert groups[1]["lr"] == pytest.approx(1e-2) and groups[1]["weight_decay"] == 0.0
    opt = torch.optim.SGD(groups, lr=1e-3)
    net(torch.randn(1, 1, 12, 12)).sum().backward()
    opt.step()
    assert frozen.sigma.item() == 2.0
    assert [name for name, _, _ in sigmas(net)] == ["0", "2", "3"]
    assert "order=2, sigma=2" in repr(frozen) and "learn_sigma=False" in repr(frozen)


def test_state_dict_round_trip_restores_sigma():
    a = NJetConv(2, 2, 2, init_sigma=1.0)
    with torch.no_grad():
        a.raw_sigma.fill_(1.5)
    b = NJetConv(2, 2, 2, init_sigma=1.0)
    b.load_state_dict(a.state_dict())
    assert b.sigma.item() == a.sigma.item() and b.kernel_size == a.kernel_size


def test_anisotropic_spacing_gives_anisotropic_kernels():
    layer = NJetConv(3, 1, 2, init_sigma=2.0, spacing=(1.0, 1.0, 4.0))
    assert layer.kernel_size == (11, 11, 5)  # 0.5 voxel along the thick axis
    x = torch.randn(1, 1, 14, 13, 6, dtype=torch.float64)
    layer = layer.double()
    layer.path = "dense"
    dense = layer(x)
    layer.path = "separable"
    torch.testing.assert_close(layer(x), dense)


def test_bad_arguments():
    with pytest.raises(ValueError, match="order must be >= 0"):
        NJetConv(2, 1, 1, order=-1)
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="init_sigma must be a positive"):
            NJetConv(2, 1, 1, init_sigma=bad)
    with pytest.raises(ValueError, match="sigma_range must satisfy"):
        NJetConv(2, 1, 1, init_sigma=1.0, sigma_range=(1.5, 4.0))
    with pytest.raises(ValueError, match="sigma_range must satisfy"):
        NJetConv(2, 1, 1, init_sigma=1.0, sigma_range=(0.0, 4.0))
    with pytest.raises(TypeError, match="sigma_range must be a pair"):
        NJetConv(2, 1, 1, sigma_range=4.0)
    with pytest.raises(ValueError, match="larger than max_kernel_size=11"):
        NJetConv(2, 1, 1, sigma_range=(0.5, 8.0), max_kernel_size=11)
    assert NJetConv(2, 1, 1, sigma_range=(0.5, 2.0), max_kernel_size=11).max_kernel_size == 11
    with pytest.raises(ValueError, match="path must be one of"):
        NJetConv(2, 1, 1, path="fft")
    with pytest.raises(ValueError, match="init must be"):
        NJetConv(2, 1, 1, init="xavier")
    layer = NJetConv(2, 3, 1)
    with pytest.raises(ValueError, match=r"expects input of shape \(B, 3, \*, \*\)"):
        layer(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="expects input"):
        layer(torch.zeros(1, 3, 8))
