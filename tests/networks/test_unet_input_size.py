"""Every U-Net of the package names an input too small for its depth instead of crashing inside max-pooling."""

from __future__ import annotations

import pytest
import torch

from monai_implicit.networks.nets import FlexUNet, HyperUNet, NeRDUNet, NJetUNet, PlainUNet
from monai_implicit.networks.utils import bake

NETWORKS = {
    "PlainUNet": lambda: PlainUNet(2, 1, 2, features=2, depth=2, input_features=None, kernel_size=3),
    "HyperUNet": lambda: HyperUNet(2, 1, 2, features=2, depth=2, input_features=2),
    "NJetUNet": lambda: NJetUNet(2, 1, 2, features=2, depth=2),
    "NeRDUNet": lambda: NeRDUNet(2, 1, 2, features=[2, 4, 8]),
    "FlexUNet": lambda: FlexUNet(2, 1, 2, features=2, depth=2, kernel_size=5),
    "HyperUNet 3D": lambda: HyperUNet(3, 1, 2, features=2, depth=1, input_features=2, kernel_size=3),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_input_smaller_than_two_to_the_depth_is_named(name):
    net = NETWORKS[name]().eval()
    d = net.spatial_dims
    need = 2**net.depth
    # sizes >= 2**depth work whether or not they are divisible by it (odd sizes included)
    for size in ((need + 1,) * d, (need,) * d, (3 * need - 1,) * d):
        with torch.no_grad():
            assert net(torch.rand(1, 1, *size)).shape == (1, 2, *size)
    small = (need,) * (d - 1) + (need - 1,)
    with pytest.raises(ValueError) as err:
        net(torch.rand(1, 1, *small))
    message = str(err.value)
    assert f"2**depth = {need}" in message and str([1, 1, *small]) in message and type(net).__name__ in message


def test_check_survives_baking_and_torchscript():
    scripted = torch.jit.script(bake(NETWORKS["NeRDUNet"]().eval()))
    assert scripted(torch.rand(1, 1, 5, 7)).shape == (1, 2, 5, 7)
    with pytest.raises(Exception, match=r"needs every spatial size >= 2\*\*depth = 4"):
        scripted(torch.rand(1, 1, 3, 8))
