"""fft_conv against torch.nn.functional.conv{1,2,3}d (the independent reference), forward and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from monai_implicit.layers.fft_conv import conv_nd, fft_conv, fft_is_faster, padded_conv

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
# non-square inputs; odd and even kernels (even only where PyTorch allows them)
SHAPES = {1: ((37,), (5,), (4,)), 2: ((17, 12), (5, 3), (4, 3)), 3: ((9, 11, 7), (3, 5, 3), (2, 4, 3))}
OPTIONS = [
    {"padding": "same"},
    {"padding": "valid"},
    {"padding": (1,), "stride": 2},
    {"padding": 2, "dilation": 2},
    {"padding": 1, "groups": 2},
    {"padding": "same", "groups": 4},
]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("parity", ["odd", "even"])
@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
def test_fft_conv_matches_conv_forward_and_gradients(dims, parity, options):
    torch.manual_seed(dims)
    spatial, k_odd, k_even = SHAPES[dims]
    k = k_odd if parity == "odd" else k_even
    options = dict(options)
    if isinstance(options.get("padding"), tuple):
        options["padding"] = options["padding"] * dims
    groups = options.pop("groups", 1)
    x = torch.randn(2, 4, *spatial, requires_grad=True)
    w = torch.randn(8, 4 // groups, *k, requires_grad=True)
    b = torch.randn(8, requires_grad=True)
    ref = CONV[dims](x, w, b, groups=groups, **options)
    out = fft_conv(x, w, b, groups=groups, **options)
    assert out.shape == ref.shape
    assert _rel(out, ref) < 1e-4
    g_out = torch.randn_like(ref)
    ref_grads = torch.autograd.grad(ref, (x, w, b), g_out)
    out_grads = torch.autograd.grad(out, (x, w, b), g_out)
    for got, want in zip(out_grads, ref_grads):
        assert _rel(got, want) < 1e-4


def test_fft_conv_large_kernel_1d_and_half_precision():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 500)
    w = torch.randn(5, 3, 131)
    assert _rel(fft_conv(x, w, padding="same"), F.conv1d(x, w, padding="same")) < 1e-4
    # CPU FFTs have no half kernels: computed in float32, returned in the input dtype
    out = fft_conv(x.bfloat16(), w.bfloat16(), padding="same")
    assert out.dtype == torch.bfloat16
    assert _rel(out.float(), F.conv1d(x.bfloat16().float(), w.bfloat16().float(), padding="same")) < 1e-2


@pytest.mark.parametrize("method", ["auto", "direct", "fft"])
def test_conv_nd_methods_agree(method):
    torch.manual_seed(1)
    x = torch.randn(1, 2, 40, 33)
    w = torch.randn(3, 2, 21, 7)
    assert _rel(conv_nd(x, w, padding="same", method=method), F.conv2d(x, w, padding="same")) < 1e-4


def test_cost_model_prefers_direct_for_small_and_fft_for_large_kernels():
    # flop model only (no timing): 3-tap kernels are direct, kernels as large as a 4096-sample RF line are FFT
    assert not fft_is_faster((4, 22, 4098), (22, 22, 3))
    assert fft_is_faster((4, 22, 4096 + 1054), (22, 22, 1055))
    assert not fft_is_faster((1, 8, 50, 50, 50), (8, 8, 3, 3, 3))
    assert fft_is_faster((1, 8, 72, 72, 72), (8, 8, 25, 25, 25))
    # monotone in the kernel size at a fixed input size
    decisions = [fft_is_faster((2, 16, 160, 160), (16, 16, k, k)) for k in (3, 5, 9, 17, 33)]
    assert decisions == sorted(decisions)


def test_padded_conv_reflect_matches_pad_then_conv():
    torch.manual_seed(2)
    x = torch.randn(2, 3, 200)
    w = torch.randn(4, 3, 65)
    ref = F.conv1d(F.pad(x, (32, 32), mode="reflect"), w)
    for method in ("direct", "fft"):
        out = padded_conv(x, w, None, [(32, 32)], "reflect", method=method)
        assert _rel(out, ref) < 1e-4


def test_bad_input():
    x = torch.randn(1, 2, 10)
    w = torch.randn(3, 2, 11)
    with pytest.raises(ValueError, match="larger than the padded input"):
        fft_conv(x, w, padding="valid")
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv_nd(x, w, method="direct")
    with pytest.raises(ValueError, match="channels"):
        fft_conv(torch.randn(1, 3, 10), torch.randn(3, 2, 3))
    with pytest.raises(ValueError, match="spatial dims"):
        fft_conv(torch.randn(1, 2, 10, 10), torch.randn(3, 2, 3))
    with pytest.raises(ValueError, match="strided"):
        fft_conv(x, torch.randn(3, 2, 3), padding="same", stride=2)
    with pytest.raises(ValueError, match="padding must be"):
        fft_conv(x, torch.randn(3, 2, 3), padding="full")
    with pytest.raises(ValueError, match="method"):
        conv_nd(x, torch.randn(3, 2, 3), method="winograd")
    with pytest.raises(ValueError, match="reflect"):
        padded_conv(x, w, None, [(10, 10)], "reflect")
    with pytest.raises(TypeError):
        fft_conv(x.numpy(), w)
