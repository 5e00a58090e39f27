"""NeRDUNet ("NeRD: Neural Representation of Distribution for Medical Image Segmentation", Sec. 2.2): topology,
arguments, reduction to the plain U-Net, global vs patch positions."""

import numpy as np
import pytest
import torch

from monai_implicit.networks.nets import NeRDUNet, PlainUNet, nerd_head

SMALL = dict(features=(4, 8, 16), hidden=(8,))


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
@pytest.mark.parametrize("head", ["nerdc", "nerdm"])
@pytest.mark.parametrize("backbone", ["plain", "hyper"])
def test_shapes(spatial_dims, head, backbone):
    net = NeRDUNet(spatial_dims, 2, 3, head=head, backbone=backbone, **SMALL)
    x = torch.randn(2, 2, *([9, 8, 7][:spatial_dims]))  # odd sizes go through the skeleton's exact upsampling
    y = net(x)
    assert y.shape == (2, 3, *x.shape[2:])
    y.mean().backward()
    assert net.head.last.weight.grad is not None
    assert net.encoder[0][0].conv.__class__.__name__ == ("HyperConv" if backbone == "hyper" else f"Conv{spatial_dims}d")


def test_default_channels_are_the_papers():
    net = NeRDUNet(2, 1, 2)
    widths = [level[1].conv.out_channels for level in net.encoder] + [net.bottleneck[1].conv.out_channels]
    assert widths == [16, 32, 64, 128, 256]
    assert net.head.in_channels == 16 and type(net.input_block).__name__ == "Identity"
    assert [level[1].conv.kernel_size for level in net.encoder] == [(3, 3)] * 4
    twice = NeRDUNet(2, 1, 2, features=32)  # the paper's "512" network
    assert twice.bottleneck[1].conv.out_channels == 512
    # the backbone is exactly the plain U-Net of the same widths: only the head differs
    plain = PlainUNet(2, 1, 2, features=16, depth=4, kernel_size=3, input_features=None, dropout=0.0)

    def count(m):
        return sum(p.numel() for p in m.parameters())

    assert count(net) - count(net.head) == count(plain) - count(plain.head)


def test_features_argument():
    assert len(NeRDUNet(2, 1, 1, features=[8, 16, 32]).encoder) == 2
    assert len(NeRDUNet(2, 1, 1, features=8, depth=1).encoder) == 1
    with pytest.raises(ValueError, match="must double"):
        NeRDUNet(2, 1, 1, features=(16, 32, 48))
    with pytest.raises(ValueError, match="contradicts"):
        NeRDUNet(2, 1, 1, features=(16, 32, 64), depth=3)
    with pytest.raises(ValueError, match=r"features\[0\] must be a positive integer"):
        NeRDUNet(2, 1, 1, features=(0, 0))
    with pytest.raises(TypeError, match="features"):
        NeRDUNet(2, 1, 1, features="16")


def test_bad_arguments():
    with pytest.raises(ValueError, match="head must be one of"):
        NeRDUNet(2, 1, 2, head="nerd")
    with pytest.raises(ValueError, match="backbone must be one of"):
        NeRDUNet(2, 1, 2, backbone="resnet")
    with pytest.raises(ValueError, match="position must be one of"):
        NeRDUNet(2, 1, 2, position="image")
    with pytest.raises(ValueError, match="image_size must be 2"):
        NeRDUNet(2, 1, 2, image_size=(16, 16, 16))
    with pytest.raises(ValueError, match="head must be one of"):
        nerd_head("nerdx")
    net = NeRDUNet(2, 2, 2, **SMALL)
    with pytest.raises(ValueError, match=r"expects input \(B, 2"):
        net(torch.zeros(1, 3, 8, 8))
    net.position = "global"
    with pytest.raises(ValueError, match="global positions need the window origin"):
        net(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="global positions need the window origin"):
        net(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2))  # no image size
    with pytest.raises(ValueError, match="does not match the input size"):
        net(torch.zeros(1, 2, 8, 8), [[slice(0, 1), slice(None), slice(0, 4), slice(0, 8)]], image_size=(8, 8))


@pytest.mark.parametrize("head", ["nerdc", "nerdm"])
def test_constant_head_reduces_to_the_plain_unet(head):
    net = NeRDUNet(2, 1, 3, head=head, **SMALL).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        net.head.last.weight.zero_()  # constant position MLP
    plain = PlainUNet(2, 1, 3, features=4, depth=2, kernel_size=3, input_features=None, dropout=0.0).eval()
    backbone = {k: v for k, v in net.state_dict().items() if not k.startswith("head.")}
    missing = plain.load_state_dict(backbone, strict=False).missing_keys
    assert sorted(missing) == ["head.bias", "head.weight"]
    raw = net.head.last.bias.detach()
    c, k = 4, 3
    with torch.no_grad():
        if head == "nerdc":
            plain.head.weight.copy_(raw[: c * k].reshape(k, c, 1, 1))
            plain.head.bias.zero_()
        else:  # w^T (x / sigma - mu / sigma): weight w / sigma, bias w^T (-mu / sigma)
            w = net.head.classifier.weight.detach().reshape(k, c)
            plain.head.weight.copy_((w * torch.nn.functional.softplus(raw[:c])).reshape(k, c, 1, 1))
            plain.head.bias.copy_(w @ raw[c:])
    x = torch.randn(2, 1, 12, 10)
    with torch.no_grad():
        torch.testing.assert_close(net(x), plain(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_global_equals_patch_for_the_whole_image(spatial_dims, randomise_head):
    net = randomise_head(NeRDUNet(spatial_dims, 1, 2, head="nerdm", **SMALL)).eval()
    x = torch.randn(2, 1, *([8, 9, 7][:spatial_dims]))
    with torch.no_grad():
        patch = net(x)
        net.position = "global"
        torch.testing.assert_close(net(x, torch.zeros(2, spatial_dims), list(x.shape[2:])), patch)
        net.image_size = list(x.shape[2:])  # the attribute stands in for a missing image_size argument
        torch.testing.assert_close(net(x, torch.zeros(2, spatial_dims)), patch)


def test_nerd_head_factory_on_other_unets():
    net = PlainUNet(2, 1, 2, features=4, depth=1, kernel_size=3, head=nerd_head("nerdm", hidden=(4,)))
    assert type(net.head).__name__ == "NeRDm"
    assert net(torch.randn(1, 1, 8, 8)).shape == (1, 2, 8, 8)


def test_training_step_updates_backbone_and_head(fit):
    torch.manual_seed(0)
    net = NeRDUNet(2, 1, 2, **SMALL)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-6)  # the paper's optimiser settings
    x, y = torch.randn(2, 1, 16, 16), torch.randint(0, 2, (2, 16, 16))
    before = [p.detach().clone() for p in net.parameters()]
    losses = fit(net, torch.nn.functional.cross_entropy, x, y, opt, steps=3)
    assert all(np.isfinite(losses))
    changed = [not torch.equal(a, b) for a, b in zip(before, net.parameters())]
    assert all(changed)
