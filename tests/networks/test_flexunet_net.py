"""FlexUNet on the shared U-Net skeleton: shapes, every conv a FlexConv, deployment to plain convolutions."""

from __future__ import annotations

import copy

import pytest
import torch

from monai_implicit.layers.flexconv import FlexConv
from monai_implicit.losses.aliasing import alias_free_penalty
from monai_implicit.networks.nets.flexunet import FlexUNet, flex_conv
from monai_implicit.networks.nets.unet import ConvUNet


@pytest.mark.parametrize("spatial_dims,size", [(1, (37,)), (2, (19, 24)), (3, (10, 9, 12))])
def test_shapes_and_backward(spatial_dims, size):
    torch.manual_seed(0)
    net = FlexUNet(spatial_dims, 2, 3, features=4, depth=2, input_features=None, kernel_size=9, hidden=8)
    assert isinstance(net, ConvUNet)
    x = torch.randn(2, 2, *size)
    y = net(x)
    assert y.shape == (2, 3, *size)
    (y.square().mean() + 0.1 * alias_free_penalty(net)).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters() if p.requires_grad)


def test_every_block_conv_is_a_flexconv_and_the_penalty_covers_them():
    net = FlexUNet(2, 1, 2, features=4, depth=1, input_features=4, kernel_size=(17, 9), hidden=8)
    flex = [m for m in net.modules() if isinstance(m, FlexConv)]
    # input block 1 + encoder 2 + bottleneck 2 + decoder (up conv 1 + 2 blocks)
    assert len(flex) == 8
    assert all(m.kernel_size == (17, 9) for m in flex)
    total = sum(alias_free_penalty(m) for m in flex)
    torch.testing.assert_close(alias_free_penalty(net), total)


def test_replacing_each_flexconv_by_its_plain_conv_keeps_the_output():
    torch.manual_seed(1)
    net = FlexUNet(2, 1, 2, features=4, depth=1, input_features=None, kernel_size=17, hidden=8).eval()
    baked = copy.deepcopy(net)
    for module in list(baked.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, FlexConv):
                setattr(module, child_name, child.to_conv())
    assert not any(isinstance(m, FlexConv) for m in baked.modules())
    x = torch.randn(1, 1, 20, 20)
    torch.testing.assert_close(baked(x), net(x), rtol=1e-4, atol=1e-5)


def test_factory_and_bad_arguments():
    conv = flex_conv(kernel_size=9, hidden=8)(3, 2, 4)
    assert isinstance(conv, FlexConv) and conv.spatial_dims == 3
    with pytest.raises(ValueError, match="odd"):
        FlexUNet(2, 1, 1, kernel_size=8)
    with pytest.raises(ValueError, match="kernel must be one of"):
        FlexUNet(2, 1, 1, features=4, depth=1, kernel="fourier")
