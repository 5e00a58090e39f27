"""CKConv: unit-grid SIREN kernel, reflection padding, FFT path, deployment, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from monai_implicit.layers.ckconv import CKConv, ContinuousKernelConv
from monai_implicit.layers.implicit_conv import ImplicitConv

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def test_kernel_is_the_siren_on_linspace():
    torch.manual_seed(0)
    conv = CKConv(1, 2, 3, 9, omega_0=8.0, hidden=4)
    assert isinstance(conv, ImplicitConv)
    P = {n: p.detach().double().numpy() for n, p in conv.kernel_net.named_parameters()}
    taps = np.linspace(-1.0, 1.0, 9)  # the thesis' {dtau}: -1, -0.75, ..., 1
    expected = np.zeros((3, 2, 9))
    for t, x in enumerate(taps):
        h = np.sin(8.0 * (P["sines.0.weight"][:, 0] * x + P["sines.0.bias"]))
        h = np.sin(8.0 * (P["sines.1.weight"] @ h + P["sines.1.bias"]))
        expected[:, :, t] = (P["out.weight"] @ h + P["out.bias"]).reshape(3, 2)
    np.testing.assert_allclose(conv.weight.detach().double().numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("method", ["direct", "fft"])
def test_rf_line_forward_matches_pad_then_conv(padding_mode, method):
    torch.manual_seed(1)
    conv = CKConv(1, 3, 4, 65, omega_0=30.0, padding_mode=padding_mode, method=method)
    x = torch.randn(2, 3, 150)
    w = conv.weight.detach()
    mode = "constant" if padding_mode == "zeros" else padding_mode
    ref = F.conv1d(F.pad(x, (32, 32), mode=mode), w, conv.bias.detach())
    out = conv(x)
    assert out.shape == (2, 4, 150)
    assert ((out - ref).norm() / ref.norm()).item() < 1e-4


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
def test_fft_and_direct_paths_agree_with_gradients(spatial_dims):
    torch.manual_seed(spatial_dims)
    size = {1: (40,), 2: (14, 11), 3: (7, 8, 6)}[spatial_dims]
    k = {1: 15, 2: (5, 7), 3: (3, 5, 3)}[spatial_dims]
    direct = CKConv(spatial_dims, 2, 3, k, omega_0=10.0, method="direct", padding_mode="reflect")
    fft = CKConv(spatial_dims, 2, 3, k, omega_0=10.0, method="fft", padding_mode="reflect")
    fft.load_state_dict(direct.state_dict())
    x = torch.randn(2, 2, *size)
    y_d, y_f = direct(x), fft(x)
    torch.testing.assert_close(y_f, y_d, rtol=1e-4, atol=1e-4)
    y_d.square().sum().backward()
    y_f.square().sum().backward()
    for (name, p_d), p_f in zip(direct.named_parameters(), fft.parameters()):
        assert p_d.grad is not None and torch.isfinite(p_d.grad).all(), name
        torch.testing.assert_close(p_f.grad, p_d.grad, rtol=1e-3, atol=1e-4)


def test_depthwise_even_kernel_and_to_conv():
    torch.manual_seed(2)
    conv = CKConv(1, 4, 4, 64, groups=4, padding_mode="reflect")
    assert conv.weight.shape == (4, 1, 64)
    x = torch.randn(1, 4, 100)
    plain = conv.to_conv()
    assert isinstance(plain, torch.nn.Conv1d) and plain.kernel_size == (64,)
    torch.testing.assert_close(plain(x), conv(x), rtol=1e-4, atol=1e-4)


def test_sample_kernel_on_a_denser_grid_contains_the_coarse_taps():
    conv = CKConv(2, 1, 2, (9, 5))
    coarse = conv.sample_kernel()
    fine = conv.sample_kernel((17, 9))
    assert fine.shape == (2, 1, 17, 9)
    torch.testing.assert_close(fine[..., ::2, ::2], coarse, rtol=1e-5, atol=1e-6)


def test_magnet_kernel_family_and_parameter_count():
    conv = CKConv(2, 3, 4, 33, kernel="magnet", kernel_kwargs={"input_scale": 12.8})
    assert isinstance(conv, ContinuousKernelConv) and conv.kernel_family == "magnet"
    assert conv.kernel_net.input_scale == 12.8
    siren = CKConv(1, 22, 22, 131)
    # SIREN D=1, H=32, two sine layers: (D+1)H + (H+1)H + (H+1) Cin Cout + Cout bias, independent of k
    assert sum(p.numel() for p in siren.parameters()) == 2 * 32 + 33 * 32 + 33 * 22 * 22 + 22


def test_bad_input():
    with pytest.raises(ValueError, match="omega_0"):
        CKConv(1, 1, 1, 9, omega_0=0.0)
    with pytest.raises(ValueError, match="omega_0"):
        CKConv(1, 1, 1, 9, omega_0=-30.0)
    with pytest.raises(ValueError, match="kernel must be one of"):
        CKConv(1, 1, 1, 9, kernel="fourier")
    with pytest.raises(TypeError, match="option"):
        CKConv(1, 1, 1, 9, kernel_kwargs={"omega": 3.0})
    with pytest.raises(ValueError, match="weight_norm"):
        CKConv(1, 1, 1, 9, kernel="magnet", weight_norm=True)
    with pytest.raises(ValueError, match="method"):
        CKConv(1, 1, 1, 9, method="winograd")
    conv = CKConv(1, 2, 2, 131, padding_mode="reflect")
    with pytest.raises(ValueError, match="reflect"):
        conv(torch.randn(1, 2, 50))  # reflection padding of 65 needs more than 65 samples
    with pytest.raises(ValueError, match="expects input"):
        conv(torch.randn(1, 3, 500))
    # zero padding allows kernels longer than the input (the CKConv "full" horizon)
    assert CKConv(1, 2, 2, 131)(torch.randn(1, 2, 50)).shape == (1, 2, 50)
