"""HyperUNet / PlainUNet / FlatHyperCNN: published topology and parameter counts, shapes, learning."""

import pytest
import torch
from monai.losses import DiceCELoss

from monai_implicit.layers import HyperConv
from monai_implicit.networks.nets import FlatHyperCNN, HyperUNet, PlainUNet


def trainable(m):
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


@pytest.mark.parametrize("n_l,millions,digits", [(2, 0.73, 2), (4, 1.2, 1), (8, 2.2, 1)])
def test_published_hyperunet_parameter_counts(n_l, millions, digits):
    # "Hyper-Convolutions via Implicit Kernels for Medical Imaging", Table 1 / Sec. 4.1: 1 input, 1 output channel, 2D
    assert round(trainable(HyperUNet(2, 1, 1, n_l=n_l)) / 1e6, digits) == millions


def test_published_plain_unet_counts():
    baseline = PlainUNet(2, 1, 1, kernel_size=3, input_features=None, dropout_mode="bottleneck")
    assert round(trainable(baseline) / 1e6, 1) == 2.1
    assert round(trainable(PlainUNet(2, 1, 1, kernel_size=5, input_features=None, dropout_mode="bottleneck")) / 1e6,
                 1) == 5.9


def test_topology_matches_paper():
    net = HyperUNet(2, 1, 1)
    convs = [m for m in net.modules() if isinstance(m, HyperConv)]
    # input conv + 3 levels x 2 + bottleneck 2 + 3 decoder levels x 3
    assert len(convs) == 1 + 6 + 2 + 9
    assert (convs[0].in_channels, convs[0].out_channels) == (1, 16)
    assert [c.out_channels for c in convs[1:9]] == [32, 32, 64, 64, 128, 128, 256, 256]
    assert [(c.in_channels, c.out_channels) for c in convs[9:12]] == [(256, 128), (256, 128), (128, 128)]
    assert all(c.kernel_size == (5, 5) for c in convs)
    dropouts = [m for m in net.modules() if isinstance(m, torch.nn.Dropout2d | torch.nn.Dropout)]
    assert len(dropouts) == len(convs) and all(d.p == 0.5 for d in dropouts)
    # the twin differs only in the convolution
    twin = PlainUNet(2, 1, 1, kernel_size=5)
    names = [n for n, _ in net.named_modules() if not n.startswith("kernel_net") and ".kernel_net" not in n]
    assert names == [n for n, _ in twin.named_modules()]


@pytest.mark.parametrize(
    "spatial_dims,size,kernel_size", [(1, (37,), 5), (2, (33, 20), 5), (3, (17, 12, 9), (5, 5, 3))]
)
@pytest.mark.parametrize("non_local", [False, True])
def test_shapes_any_size(spatial_dims, size, kernel_size, non_local):
    net = HyperUNet(spatial_dims, 2, 3, features=4, kernel_size=kernel_size, non_local=non_local)
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(2, 2, *size)).shape == (2, 3, *size)


def test_non_local_and_flat_cnn():
    assert 1.4e6 < trainable(HyperUNet(2, 1, 1, non_local=True)) < 1.5e6  # paper: 1.4M (Table 1)
    flat = FlatHyperCNN(2, 1, 2)
    convs = [m for m in flat.modules() if isinstance(m, HyperConv)]
    assert [c.kernel_size[0] for c in convs] == [3, 5, 9, 5, 3]
    assert [c.out_channels for c in convs] == [9, 25, 81, 25, 9]
    assert flat(torch.randn(1, 1, 19, 23)).shape == (1, 2, 19, 23)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in flat.modules())


def test_bad_input():
    net = HyperUNet(2, 1, 2, features=4)
    with pytest.raises(ValueError, match=r"expects input \(B, 1, \*spatial\) with 2 spatial dims"):
        net(torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match="2 spatial dims"):
        net(torch.randn(1, 1, 16, 16, 16))
    with pytest.raises(ValueError, match="odd"):
        HyperUNet(2, 1, 2, kernel_size=4)
    with pytest.raises(ValueError, match="spatial_dims"):
        HyperUNet(4, 1, 2)
    with pytest.raises(ValueError, match="dropout_mode"):
        HyperUNet(2, 1, 2, dropout_mode="some")


def test_twenty_training_steps_lower_the_loss(fit):
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    images, labels = [], []
    for _ in range(8):
        cy, cx, r = (torch.rand(3, generator=gen) * torch.tensor([16, 16, 5]) + torch.tensor([8, 8, 4])).tolist()
        disk = ((yy - cy) ** 2 + (xx - cx) ** 2 < r**2).float()
        images.append(disk + 0.3 * torch.randn(32, 32, generator=gen))
        labels.append(disk)
    x, y = torch.stack(images)[:, None], torch.stack(labels)[:, None]
    net = HyperUNet(2, 1, 1, features=8, depth=2, dropout=0.0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = fit(net, DiceCELoss(sigmoid=True), x, y, opt, steps=20)
    assert sum(losses[-3:]) / 3 < 0.75 * losses[0], losses


@pytest.mark.parametrize("spatial_dims,size", [(2, (20, 13)), (3, (16, 11, 9))])
def test_coarse_up_conv_runs_the_decoder_convolution_before_upsampling(spatial_dims, size):
    kwargs = dict(features=4, depth=2, input_features=None, kernel_size=3, dropout=0.0, norm="instance")
    fine = HyperUNet(spatial_dims, 1, 3, **kwargs)
    coarse = HyperUNet(spatial_dims, 1, 3, coarse_up_conv=True, **kwargs)
    coarse.load_state_dict(fine.state_dict())  # same parameters: only the order of conv and upsampling changes
    seen = {}
    def record(i):
        def hook(module, args, out):
            seen[i] = tuple(args[0].shape[2:])
        return hook

    for i, level in enumerate(coarse.decoder):
        level.up_conv.register_forward_hook(record(i))
    x = torch.randn(2, 1, *size)
    out = coarse(x)
    assert out.shape == (2, 3, *size)
    # the deepest decoder convolution sees the bottleneck size, the next one the level above it
    pooled = [tuple(s // 2 for s in size)]
    pooled.append(tuple(s // 2 for s in pooled[0]))
    assert seen == {0: pooled[1], 1: pooled[0]}
    # with a convolution that commutes with nearest upsampling (1x1 kernels) both orders give the same output
    ones = dict(kwargs, kernel_size=1)
    a, b = PlainUNet(spatial_dims, 1, 3, **ones), PlainUNet(spatial_dims, 1, 3, coarse_up_conv=True, **ones)
    b.load_state_dict(a.state_dict())
    even = torch.randn(2, 1, *[8] * spatial_dims)
    assert torch.allclose(a(even), b(even), atol=1e-5)
