"""bake(), kernel_smoothness() and plot_kernels()."""

import numpy as np
import pytest
import torch
from monai.networks.utils import convert_to_torchscript
from scipy import ndimage

from monai_implicit.layers import HyperConv, ImplicitConv
from monai_implicit.networks.nets import FlatHyperCNN, HyperUNet, PlainUNet
from monai_implicit.networks.utils import bake, kernel_smoothness, plot_kernels


@pytest.mark.parametrize("spatial_dims,size,kernel_size,non_local", [
    (2, (24, 20), 5, True), (3, (12, 10, 9), (5, 5, 3), False), (1, (40,), 7, False),
])
def test_bake_same_output_and_torchscript(spatial_dims, size, kernel_size, non_local):
    torch.manual_seed(0)
    net = HyperUNet(spatial_dims, 1, 2, features=4, kernel_size=kernel_size, non_local=non_local)
    # one optimiser step so BatchNorm statistics and kernels are not at their init values
    net(torch.randn(2, 1, *size)).mean().backward()
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    net.eval()
    baked = bake(net)
    assert not any(isinstance(m, ImplicitConv) for m in baked.modules())
    assert any(isinstance(m, HyperConv) for m in net.modules())  # the original is untouched
    x = torch.randn(2, 1, *size)
    with torch.no_grad():
        assert torch.allclose(baked(x), net(x), atol=1e-5)
    scripted = convert_to_torchscript(baked, verify=True, inputs=[x], rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(scripted(x), net(x), atol=1e-5)


def test_bake_single_layer_and_type_error():
    layer = HyperConv(2, 2, 3, 5)
    assert isinstance(bake(layer), torch.nn.Conv2d)
    with pytest.raises(TypeError, match="nn.Module"):
        bake("net")


def test_kernel_smoothness_matches_scipy_laplace_on_interior():
    torch.manual_seed(0)
    net = FlatHyperCNN(2, 1, 1, kernel_sizes=(3, 5), channels=(2, 3))
    values = kernel_smoothness(net)
    assert list(values) == ["layers.0.conv", "layers.1.conv"]  # the 1x1 head is skipped
    for name, module in [("layers.0.conv", net.layers[0].conv), ("layers.1.conv", net.layers[1].conv)]:
        kernels = module.sample_kernel().detach().double().numpy()
        flat = kernels.reshape(-1, *kernels.shape[2:])
        expected = np.mean([np.abs(ndimage.laplace(k)[1:-1, 1:-1]).mean() for k in flat])
        assert values[name] == pytest.approx(expected, rel=1e-10)


def test_kernel_smoothness_anisotropic_and_plain():
    torch.manual_seed(0)
    layer = torch.nn.Conv3d(1, 1, (5, 5, 1))
    k = layer.weight.detach().double().numpy()[0, 0, :, :, 0]
    expected = np.abs(ndimage.laplace(k)[1:-1, 1:-1]).mean()  # the size-1 axis has no second difference
    assert kernel_smoothness(torch.nn.Sequential(layer))["0"] == pytest.approx(expected, rel=1e-10)
    assert kernel_smoothness(torch.nn.Sequential(layer), include_plain=False) == {}
    # a smooth (linear) kernel has zero Laplacian
    ramp = torch.nn.Conv2d(1, 1, 5, bias=False)
    with torch.no_grad():
        ramp.weight.copy_(torch.arange(25.0).reshape(1, 1, 5, 5))
    assert kernel_smoothness(torch.nn.Sequential(ramp))["0"] == pytest.approx(0.0, abs=1e-12)


def test_plot_kernels_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    net = PlainUNet(2, 1, 1, features=4, depth=1)
    path = plot_kernels(net, tmp_path / "sub" / "kernels.png", n_kernels=3)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="unknown layers"):
        plot_kernels(net, tmp_path / "k.png", layers=["nope"])
    with pytest.raises(ValueError, match="n_kernels"):
        plot_kernels(net, tmp_path / "k.png", n_kernels=0)
