"""HyperConv / ImplicitConv: convolution semantics, gradients, eval cache, to_conv, input validation."""

import copy

import pytest
import torch
import torch.nn.functional as F

from monai_implicit.layers import HyperConv

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def reference_conv(x, weight, bias, stride, dilation, padding_mode):
    """Independent 'same' convolution: pad by d*(k-1)/2 on each side with F.pad, then a valid F.conv."""
    pads = []
    for k, d in zip(reversed(weight.shape[2:]), reversed(dilation)):
        pads += [d * (k - 1) // 2] * 2
    mode = "constant" if padding_mode == "zeros" else padding_mode
    return CONV[x.ndim - 2](F.pad(x, pads, mode=mode), weight, bias, stride, 0, dilation)


CASES = [
    (1, 5, 1, 1, (23,)),
    (1, 3, 2, 3, (20,)),
    (2, 5, 1, 1, (17, 12)),
    (2, (3, 7), 2, 1, (15, 16)),
    (2, 3, 1, (2, 1), (11, 9)),
    (3, (5, 5, 3), 1, 1, (9, 10, 7)),
    (3, 3, 2, 2, (9, 8, 11)),
]


@pytest.mark.parametrize("spatial_dims,kernel_size,stride,dilation,size", CASES)
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
def test_matches_reference_convolution(spatial_dims, kernel_size, stride, dilation, size, padding_mode):
    torch.manual_seed(0)
    layer = HyperConv(spatial_dims, 3, 4, kernel_size, stride=stride, dilation=dilation, padding_mode=padding_mode)
    x = torch.randn(2, 3, *size)
    out = layer(x)
    expected = reference_conv(x, layer.sample_kernel(), layer.bias, layer.stride, layer.dilation, padding_mode)
    assert out.shape == expected.shape
    assert out.shape[2:] == tuple(-(-n // s) for n, s in zip(size, layer.stride))
    assert torch.allclose(out, expected, atol=1e-5)


def test_parameter_count_independent_of_kernel_size():
    counts = {k: sum(p.numel() for p in HyperConv(2, 16, 32, k).parameters()) for k in (3, 5, 9)}
    assert set(counts.values()) == {388 + 5 * 16 * 32 + 32}
    assert sum(p.numel() for p in HyperConv(2, 16, 32, 5, bias=False).parameters()) == 388 + 5 * 16 * 32


def test_gradcheck_float64():
    """Analytic gradients w.r.t. the input and every hyper-network parameter match finite differences."""
    torch.manual_seed(0)
    layer = HyperConv(2, 2, 2, 3, n_l=2, hidden=(4,)).double()
    # zero-initialised biases put the centre tap (coordinate 0) exactly on the LeakyReLU kink, where the
    # derivative is undefined; check at a generic, differentiable point instead
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-0.5, 0.5)
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    names = [n for n, _ in layer.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in layer.parameters())

    def fn(inp, *ps):
        return torch.func.functional_call(layer, dict(zip(names, ps)), (inp,))

    assert torch.autograd.gradcheck(fn, (x, *params), eps=1e-6, atol=1e-5)


def test_eval_cache_reused_and_invalidated_by_optimizer_step_and_load_state_dict():
    torch.manual_seed(0)
    layer = HyperConv(2, 2, 3, 5)
    x = torch.randn(1, 2, 8, 8)
    layer.eval()
    with torch.no_grad():
        w1 = layer.weight
        assert layer.weight is w1  # reused, not resampled
        y1 = layer(x)
    # an optimizer step in between must lead to a resampled kernel
    layer.train()
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    layer(x).sum().backward()
    opt.step()
    layer.eval()
    with torch.no_grad():
        w2 = layer.weight
        assert w2 is not w1 and not torch.allclose(w2, w1)
        assert torch.allclose(w2, layer.sample_kernel())
    # a step while in eval mode (e.g. fine-tuning with BatchNorm frozen) must invalidate too
    with torch.no_grad():
        _ = layer.weight
    layer(x).sum().backward()  # grad enabled in eval: uses a fresh kernel, so gradients reach the hyper-network
    assert layer.kernel_net.out.weight.grad is not None
    opt.step()
    with torch.no_grad():
        assert torch.allclose(layer.weight, layer.sample_kernel())
    # load_state_dict from another layer
    other = HyperConv(2, 2, 3, 5)
    layer.load_state_dict(other.state_dict())
    with torch.no_grad():
        assert torch.allclose(layer.weight, other.sample_kernel())
        assert not torch.allclose(layer(x), y1)
    # inference mode works and does not break a later grad-enabled forward
    with torch.inference_mode():
        layer(x)
    layer(x).sum().backward()


def test_training_mode_resamples_every_forward():
    layer = HyperConv(2, 2, 3, 3)
    assert layer.weight is not layer.weight
    assert layer.weight.requires_grad


@pytest.mark.parametrize("spatial_dims,kernel_size,stride,dilation,padding_mode", [
    (1, 7, 1, 2, "replicate"), (2, (5, 3), 2, 1, "zeros"), (3, (5, 5, 3), 1, 1, "circular"), (2, 3, 1, 1, "reflect"),
])
def test_to_conv_identical_output(spatial_dims, kernel_size, stride, dilation, padding_mode):
    torch.manual_seed(0)
    layer = HyperConv(spatial_dims, 3, 2, kernel_size, stride=stride, dilation=dilation, padding_mode=padding_mode)
    conv = layer.to_conv()
    assert isinstance(conv, [torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d][spatial_dims - 1])
    x = torch.randn(2, 3, *([11] * spatial_dims))
    with torch.no_grad():
        assert torch.allclose(conv(x), layer(x), atol=1e-6)
    assert "kernel=hyper" in repr(layer) and "kernel_size=" in repr(layer)


def test_deepcopy_and_dtype_device_moves_refresh_cache():
    layer = HyperConv(2, 2, 2, 3).eval()
    with torch.no_grad():
        layer(torch.randn(1, 2, 5, 5))
        clone = copy.deepcopy(layer).double()
        assert clone(torch.randn(1, 2, 5, 5, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("kwargs,match", [
    (dict(spatial_dims=4, in_channels=2, out_channels=2, kernel_size=3), "spatial_dims must be 1, 2 or 3"),
    (dict(spatial_dims=0, in_channels=2, out_channels=2, kernel_size=3), "spatial_dims must be 1, 2 or 3"),
    (dict(spatial_dims=2, in_channels=2, out_channels=2, kernel_size=4), "odd"),
    (dict(spatial_dims=2, in_channels=2, out_channels=2, kernel_size=(3, -1)), "positive"),
    (dict(spatial_dims=2, in_channels=2, out_channels=2, kernel_size=0), "positive"),
    (dict(spatial_dims=2, in_channels=0, out_channels=2, kernel_size=3), "in_channels"),
    (dict(spatial_dims=2, in_channels=2, out_channels=2, kernel_size=3, stride=0), "stride"),
    (dict(spatial_dims=2, in_channels=2, out_channels=2, kernel_size=3, padding_mode="mirror"), "padding_mode"),
])
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HyperConv(**kwargs)


def test_forward_errors_name_expected_and_received():
    layer = HyperConv(2, 3, 4, 3)
    with pytest.raises(ValueError, match=r"\(B, 3, \*, \*\).*got \(2, 5, 8, 8\)"):
        layer(torch.randn(2, 5, 8, 8))
    with pytest.raises(ValueError, match=r"2 spatial dims, got \(2, 3, 8, 8, 8\)"):
        layer(torch.randn(2, 3, 8, 8, 8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        layer([[1.0]])
