"""NJetUNet ("Resolution learning in deep convolutional networks using scale-space theory", Sec. 4.2): topology,
parameter count from the formula, readout, deployment as plain convs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from monai_implicit.layers.njet import NJetConv, sigmas
from monai_implicit.networks.nets import NJetUNet, PlainUNet


@pytest.mark.parametrize("dims, shape", [(1, (37,)), (2, (21, 26)), (3, (11, 12, 9))])
def test_shapes_for_odd_sizes(dims, shape):
    net = NJetUNet(dims, 2, 3, features=4, depth=2).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 2, *shape))
    assert out.shape == (2, 3, *shape)


def test_defaults_follow_the_paper_segmentation_unet():
    net = NJetUNet(2, 1, 11)
    readout = sigmas(net)
    # three levels (two pools): 2 + 2 encoder, 2 bottleneck, 2 x (1 up + 2 decoder) = 12 N-Jet layers
    assert len(readout) == 12
    assert all(sigma == 1.0 and size == (7, 7) for _, sigma, size in readout)
    layers = [m for m in net.modules() if isinstance(m, NJetConv)]
    assert all(m.order == 2 and m.raw_sigma.numel() == 1 and m.learn_sigma for m in layers)
    assert [m.out_channels for m in layers[:6]] == [64, 64, 128, 128, 256, 256]


def test_parameter_count_matches_formula():
    order, f, c_in, c_out = 4, 8, 1, 2
    net = NJetUNet(2, c_in, c_out, features=f, depth=2, order=order, norm=None)
    n_f = math.comb(order + 2, 2)
    convs = [(c_in, f), (f, f), (f, 2 * f), (2 * f, 2 * f), (2 * f, 4 * f), (4 * f, 4 * f),
             (4 * f, 2 * f), (4 * f, 2 * f), (2 * f, 2 * f), (2 * f, f), (2 * f, f), (f, f)]
    expected = sum(i * o * n_f + o + 1 for i, o in convs) + f * c_out + c_out  # alphas, bias, sigma; 1x1 head
    assert sum(p.numel() for p in net.parameters()) == expected


def test_learns_and_reads_out_every_sigma(fit):
    torch.manual_seed(0)
    net = NJetUNet(2, 1, 2, features=4, depth=1)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    x, y = torch.randn(1, 1, 12, 12), torch.randint(0, 2, (1, 12, 12))
    fit(net, nn.functional.cross_entropy, x, y, opt, steps=2)
    readout = sigmas(net)
    assert len(readout) == 7 and all(s != 1.0 for _, s, _ in readout)
    assert readout[0][0] == "encoder.0.0.conv"


def test_plain_conv_deployment_gives_the_same_output():
    torch.manual_seed(1)
    net = NJetUNet(2, 1, 2, features=4, depth=1, init_sigma=1.4).eval()
    plain = PlainUNet(2, 1, 2, features=4, depth=1, kernel_size=9, input_features=None, dropout=0.0).eval()
    # copy every N-Jet kernel into the plain twin (what networks.utils.bake does generically)
    state = {}
    for name, module in net.named_modules():
        if isinstance(module, NJetConv):
            conv = module.to_conv()
            state[f"{name}.weight"], state[f"{name}.bias"] = conv.weight, conv.bias
    state.update({k: v for k, v in net.state_dict().items() if "alpha" not in k and "raw_sigma" not in k
                  and k not in state})
    plain.load_state_dict(state)
    x = torch.randn(1, 1, 20, 20)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), net(x), atol=1e-5, rtol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="order must be >= 0"):
        NJetUNet(2, 1, 1, order=-1)
    with pytest.raises(ValueError, match="init_sigma"):
        NJetUNet(2, 1, 1, init_sigma=0.0)
    with pytest.raises(ValueError, match="max_kernel_size"):
        NJetUNet(2, 1, 1, max_kernel_size=9)
    with pytest.raises(ValueError, match="spatial_dims"):
        NJetUNet(4, 1, 1)
    with pytest.raises(ValueError, match="expects input"):
        NJetUNet(2, 1, 1, features=4, depth=1)(torch.zeros(1, 2, 8, 8))


def test_bake_replaces_every_njet_layer():
    from monai_implicit.networks.utils import bake

    torch.manual_seed(2)
    net = NJetUNet(3, 1, 2, features=2, depth=1, init_sigma=0.8).eval()
    baked = bake(net)
    assert not any(isinstance(m, NJetConv) for m in baked.modules())
    x = torch.randn(1, 1, 10, 9, 8)
    with torch.no_grad():
        torch.testing.assert_close(baked(x), net(x), atol=1e-5, rtol=1e-5)
