"""NeRDm (Eq. 4/5) and NeRDc (s_v = x_v^T w_v) heads against a NumPy re-implementation.

Reference: "NeRD: Neural Representation of Distribution for Medical Image Segmentation" (Zhang et al.), Sec. 2.
"""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from monai_implicit.layers.nerd import NeRDc, NeRDm


def randomise(head, seed=0, scale=0.5):
    """Random MLP weights (the default init zeroes the last layer, which hides the position dependence)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in head.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return head


def numpy_mlp(head, positions):
    """Run the head's position MLP voxel by voxel in NumPy: 1x1 convs are matrix products per voxel."""
    convs = [m for m in head.mlp if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d))]
    h = positions
    for i, conv in enumerate(convs):
        w = conv.weight.detach().double().numpy().reshape(conv.out_channels, conv.in_channels)
        h = w @ h + conv.bias.detach().double().numpy()
        if i < len(convs) - 1:
            h = np.where(h > 0, h, 0.1 * h)  # LeakyReLU(0.1), the default activation
    return h


def naive_positions(shape):
    out = {}
    for idx in itertools.product(*[range(n) for n in shape]):
        low = [(i + 0.5) / n for i, n in zip(idx, shape)]
        out[idx] = np.array(low + [1 - v for v in low])
    return out


def manual_nerdm(head, x):
    """Eq. 5 per voxel: s_v = w^T (x_v * (1/sigma_v) + (-mu_v/sigma_v)), (1/sigma, -mu/sigma) = MLP(v)."""
    xs = x.detach().double().numpy()
    c = head.in_channels
    w = head.classifier.weight.detach().double().numpy().reshape(head.out_channels, c)
    out = np.zeros((xs.shape[0], head.out_channels, *xs.shape[2:]))
    for idx, v in naive_positions(xs.shape[2:]).items():
        raw = numpy_mlp(head, v)
        inv_sigma = np.log1p(np.exp(raw[:c])) if head.positive_scale else raw[:c]
        neg_mu_over_sigma = raw[c:]
        for b in range(xs.shape[0]):
            out[(b, slice(None), *idx)] = w @ (xs[(b, slice(None), *idx)] * inv_sigma + neg_mu_over_sigma)
    return out


def manual_nerdc(head, x):
    """s_v = x_v^T w_v (+ b_v) per voxel, w_v = MLP(v) read as a (K, C) matrix."""
    xs = x.detach().double().numpy()
    c, k = head.in_channels, head.out_channels
    out = np.zeros((xs.shape[0], k, *xs.shape[2:]))
    for idx, v in naive_positions(xs.shape[2:]).items():
        raw = numpy_mlp(head, v)
        w_v = raw[: c * k].reshape(k, c)
        for b in range(xs.shape[0]):
            s = w_v @ xs[(b, slice(None), *idx)]
            if head.bias:
                s = s + raw[c * k :]
            out[(b, slice(None), *idx)] = s
    return out


@pytest.mark.parametrize("spatial_dims,shape", [(1, (7,)), (2, (5, 6)), (3, (3, 4, 5))])
@pytest.mark.parametrize("positive_scale", [True, False])
def test_nerdm_matches_eq5(spatial_dims, shape, positive_scale):
    head = randomise(NeRDm(spatial_dims, 3, 2, hidden=(8, 6), positive_scale=positive_scale))
    x = torch.randn(2, 3, *shape)
    out = head(x)
    assert out.shape == (2, 2, *shape)
    np.testing.assert_allclose(out.detach().double().numpy(), manual_nerdm(head, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spatial_dims,shape", [(1, (7,)), (2, (5, 6)), (3, (3, 4, 5))])
@pytest.mark.parametrize("bias", [False, True])
def test_nerdc_matches_per_position_classifier(spatial_dims, shape, bias):
    head = randomise(NeRDc(spatial_dims, 4, 3, hidden=(8,), bias=bias))
    x = torch.randn(2, 4, *shape)
    out = head(x)
    assert out.shape == (2, 3, *shape)
    np.testing.assert_allclose(out.detach().double().numpy(), manual_nerdc(head, x), rtol=1e-4, atol=1e-5)


def test_linear_mlp_and_single_class():
    head = randomise(NeRDc(2, 3, 1, hidden=()))
    x = torch.randn(1, 3, 4, 5)
    np.testing.assert_allclose(head(x).detach().double().numpy(), manual_nerdc(head, x), rtol=1e-4, atol=1e-5)


def make_constant(head, seed=1):
    """Zero weights in the last MLP layer and a random bias: the MLP output no longer depends on the position."""
    randomise(head, seed)
    with torch.no_grad():
        head.last.weight.zero_()
    return head


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_constant_nerdm_is_a_1x1_convolution(spatial_dims):
    c, k = 5, 3
    head = make_constant(NeRDm(spatial_dims, c, k))
    raw = head.last.bias.detach()
    inv_sigma, shift = F.softplus(raw[:c]), raw[c:]
    w = head.classifier.weight.detach().reshape(k, c)
    conv = torch.nn.Conv2d(c, k, 1) if spatial_dims == 2 else torch.nn.Conv3d(c, k, 1)
    with torch.no_grad():  # w^T (x / sigma - mu / sigma) = (w / sigma)^T x + w^T (-mu / sigma)
        conv.weight.copy_((w * inv_sigma).reshape(conv.weight.shape))
        conv.bias.copy_(w @ shift)
    x = torch.randn(2, c, *([6] * spatial_dims))
    torch.testing.assert_close(head(x), conv(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("bias", [False, True])
def test_constant_nerdc_is_a_1x1_convolution(spatial_dims, bias):
    c, k = 5, 3
    head = make_constant(NeRDc(spatial_dims, c, k, bias=bias))
    raw = head.last.bias.detach()
    conv = (torch.nn.Conv2d if spatial_dims == 2 else torch.nn.Conv3d)(c, k, 1, bias=bias)
    with torch.no_grad():
        conv.weight.copy_(raw[: c * k].reshape(conv.weight.shape))
        if bias:
            conv.bias.copy_(raw[c * k :])
    x = torch.randn(2, c, *([6] * spatial_dims))
    torch.testing.assert_close(head(x), conv(x), rtol=1e-5, atol=1e-5)


def test_heads_start_as_a_plain_classifier():
    x = torch.randn(2, 4, 6, 7)
    m = NeRDm(2, 4, 3)
    torch.testing.assert_close(m(x), F.conv2d(x, m.classifier.weight), rtol=1e-5, atol=1e-6)
    c = NeRDc(2, 4, 3)
    torch.testing.assert_close(c(x), F.conv2d(x, c.last.bias.reshape(3, 4, 1, 1)), rtol=1e-5, atol=1e-6)
    # ... with the fan-in scale of a default nn.Conv 1x1 classifier: U(-1/sqrt(C), 1/sqrt(C))
    assert c.last.bias.abs().max() <= 1 / 4**0.5 and c.last.bias.std() > 0


def test_nerdm_scale_stays_positive_and_finite_for_extreme_outputs():
    head = NeRDm(2, 2, 1)
    with torch.no_grad():
        head.last.bias[:2] = torch.tensor([-200.0, 200.0])
    params = head.position_parameters(torch.zeros(1, 2, 3, 3))
    assert torch.isfinite(params).all() and (params[:, :2] >= 0).all()
    torch.testing.assert_close(params[0, 1], torch.full((3, 3), 200.0))


@pytest.mark.parametrize("cls", [NeRDm, NeRDc])
def test_gradients_reach_the_position_mlp(cls):
    head = cls(2, 3, 2)
    opt = torch.optim.SGD(head.parameters(), lr=0.1)
    x = torch.randn(2, 3, 6, 6)
    for _ in range(2):  # the zero-initialised last layer moves first, then the hidden layers get a gradient
        opt.zero_grad()
        head(x).square().mean().backward()
        opt.step()
    first = head.mlp[0].weight
    assert first.grad is not None and first.grad.abs().sum() > 0


@pytest.mark.parametrize("cls", [NeRDm, NeRDc])
def test_eval_cache_is_reused_and_invalidated(cls):
    head = randomise(cls(2, 3, 2)).eval()
    x = torch.randn(2, 3, 6, 7)
    with torch.no_grad():
        p1 = head.position_parameters(x)
        assert head.position_parameters(x) is p1  # cached per input size
        assert head.position_parameters(torch.randn(1, 3, 5, 5)).shape[2:] == (5, 5)
        y1 = head(x)
    opt = torch.optim.SGD(head.parameters(), lr=1.0)
    head(x).sum().backward()  # grad enabled with trainable parameters: no cache, gradients flow
    assert head.last.weight.grad is not None
    opt.step()
    fresh = cls(2, 3, 2, cache=False).eval()
    fresh.load_state_dict(head.state_dict())
    with torch.no_grad():
        y2 = head(x)
        assert not torch.allclose(y1, y2)
        torch.testing.assert_close(y2, fresh(x))
        head.load_state_dict(randomise(cls(2, 3, 2), seed=5).state_dict())
        torch.testing.assert_close(head(x), randomise(cls(2, 3, 2), seed=5).eval()(x))
        fresh.load_state_dict(head.state_dict())
        torch.testing.assert_close(head.double()(x.double()), fresh.double()(x.double()))


def test_cache_is_not_used_in_training_or_global_mode():
    head = randomise(NeRDc(2, 3, 2))
    x = torch.randn(1, 3, 4, 4)
    with torch.no_grad():
        assert head.position_parameters(x) is not head.position_parameters(x)
        head.eval()
        head.position = "global"
        o, size = torch.zeros(1, 2), [4, 4]
        assert head.position_parameters(x, o, size) is not head.position_parameters(x, o, size)


@pytest.mark.parametrize("cls", [NeRDm, NeRDc])
def test_global_mode_equals_patch_mode_for_the_whole_image(cls):
    head = randomise(cls(3, 3, 2)).eval()
    x = torch.randn(2, 3, 5, 4, 3)
    patch = head(x)
    head.position = "global"
    torch.testing.assert_close(head(x, torch.zeros(2, 3), [5, 4, 3]), patch)
    # a window elsewhere in a larger image sees other positions
    assert not torch.allclose(head(x, torch.tensor([[2, 0, 1], [0, 3, 0]]), [9, 8, 7]), patch)


@pytest.mark.parametrize("cls", [NeRDm, NeRDc])
def test_torchscript(cls):
    head = randomise(cls(2, 3, 2)).eval()
    scripted = torch.jit.script(head)
    x = torch.randn(2, 3, 6, 5)
    torch.testing.assert_close(scripted(x), head(x))
    head.position = "global"
    scripted = torch.jit.script(head)
    o = torch.tensor([[1, 2], [0, 0]])
    torch.testing.assert_close(scripted(x, o, [9, 9]), head(x, o, [9, 9]))
    with pytest.raises(Exception, match="global positions need"):
        scripted(x)


def test_head_errors():
    head = NeRDc(2, 4, 2)
    with pytest.raises(ValueError, match=r"expects features \(B, 4"):
        head(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="2 spatial dims"):
        head(torch.zeros(1, 4, 4, 4, 4))
    with pytest.raises(ValueError, match="global positions need"):
        NeRDm(2, 4, 2, position="global")(torch.zeros(1, 4, 4, 4))
    with pytest.raises(ValueError, match="position mode"):
        head.position = "world"
    with pytest.raises(ValueError, match="position mode"):
        NeRDm(2, 4, 2, position="image")
    with pytest.raises(ValueError, match="in_channels"):
        NeRDm(2, 0, 2)
    with pytest.raises(ValueError, match="out_channels"):
        NeRDc(2, 4, 0)
    with pytest.raises(ValueError, match=r"hidden\[1\] must be a positive integer"):
        NeRDc(2, 4, 2, hidden=(8, 0))
    with pytest.raises(TypeError, match="hidden"):
        NeRDc(2, 4, 2, hidden=8)
    with pytest.raises(ValueError, match="spatial_dims"):
        NeRDc(4, 4, 2)
