"""NeRDUNet under sliding-window inference (patch and global positions) and TorchScript deployment."""

import numpy as np
import pytest
import torch
from monai.inferers import sliding_window_inference
from monai.networks.utils import convert_to_torchscript

from monai_implicit.networks.nets import NeRDUNet
from monai_implicit.networks.utils import bake

SMALL = dict(features=(4, 8, 16), hidden=(8,))


def global_positions(image_size):
    """(2D, *image_size) distances of every voxel centre to the image borders, normalised by the image size."""
    grids = np.meshgrid(*[(np.arange(n) + 0.5) / n for n in image_size], indexing="ij")
    return np.stack(list(grids) + [1 - g for g in grids])


@pytest.mark.parametrize("head", ["nerdc", "nerdm"])
def test_sliding_window_patch_mode(head, randomise_head):
    net = randomise_head(NeRDUNet(2, 1, 2, head=head, **SMALL)).eval()
    image = torch.randn(2, 1, 16, 24)
    with torch.no_grad():
        out = sliding_window_inference(image, (8, 8), 4, net, overlap=0.0)
        with_coord = sliding_window_inference(image, (8, 8), 4, net, overlap=0.0, with_coord=True)
        # non-overlapping windows: the result is the network applied to each window independently
        manual = torch.zeros_like(out)
        for i in range(0, 16, 8):
            for j in range(0, 24, 8):
                manual[..., i : i + 8, j : j + 8] = net(image[..., i : i + 8, j : j + 8])
    torch.testing.assert_close(out, manual, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(with_coord, out)  # patch positions ignore the window location


@pytest.mark.parametrize("head", ["nerdc", "nerdm"])
def test_sliding_window_global_mode(head, randomise_head):
    net = randomise_head(NeRDUNet(2, 1, 2, head=head, position="global", **SMALL)).eval()
    image = torch.randn(2, 1, 16, 24)
    seen = []
    hook = net.head.encoding.register_forward_hook(lambda m, args, out: seen.append(out.clone()))
    calls = []

    def predictor(x, coords, **kwargs):
        calls.append([[(s.start, s.stop) for s in w[2:]] for w in coords])
        return net(x, coords, **kwargs)

    with torch.no_grad():
        out = sliding_window_inference(image, (8, 8), 3, predictor, overlap=0.0, with_coord=True, image_size=(16, 24))
    hook.remove()
    # every window saw the crop of the whole-image position map at its own location
    full = global_positions((16, 24))
    assert sum(len(c) for c in calls) == 2 * 6
    for windows, positions in zip(calls, seen):
        assert positions.shape == (len(windows), 4, 8, 8)
        for b, ((i0, i1), (j0, j1)) in enumerate(windows):
            np.testing.assert_allclose(positions[b].numpy(), full[:, i0:i1, j0:j1], atol=1e-6)
    with torch.no_grad():
        manual = torch.zeros_like(out)
        for i in range(0, 16, 8):
            for j in range(0, 24, 8):
                win = image[..., i : i + 8, j : j + 8]
                manual[..., i : i + 8, j : j + 8] = net(win, torch.tensor([[i, j]] * 2), [16, 24])
        torch.testing.assert_close(out, manual, rtol=1e-5, atol=1e-5)
        # buffered sliding windows pass their slices in another order and with NumPy integers
        buffered = sliding_window_inference(
            image, (8, 8), 3, net, overlap=0.0, with_coord=True, image_size=(16, 24), buffer_steps=1, buffer_dim=-1
        )
        torch.testing.assert_close(buffered, out, rtol=1e-5, atol=1e-5)
        net.position = "patch"
        patch_out = sliding_window_inference(image, (8, 8), 3, net, overlap=0.0)
    assert not torch.allclose(out, patch_out)  # the global positions did change the result


def test_sliding_window_global_mode_overlapping_3d(randomise_head):
    net = randomise_head(NeRDUNet(3, 1, 2, head="nerdc", position="global", image_size=(10, 12, 8), **SMALL)).eval()
    image = torch.randn(1, 1, 10, 12, 8)
    with torch.no_grad():
        out = sliding_window_inference(image, (8, 8, 8), 2, net, overlap=0.5, mode="gaussian", with_coord=True)
        # one window covering the image: global == patch
        whole = sliding_window_inference(image, (10, 12, 8), 1, net, with_coord=True)
        net.position = "patch"
        torch.testing.assert_close(whole, net(image))
    assert out.shape == (1, 2, 10, 12, 8) and torch.isfinite(out).all()


def test_sliding_window_global_mode_image_smaller_than_roi():
    net = NeRDUNet(2, 1, 2, position="global", **SMALL).eval()
    image = torch.randn(1, 1, 6, 16)
    with torch.no_grad(), pytest.raises(ValueError, match="pads images smaller than roi_size"):
        sliding_window_inference(image, (8, 8), 1, net, with_coord=True, image_size=(6, 16))
    with torch.no_grad():  # the padded size is what the window coordinates refer to
        out = sliding_window_inference(image, (8, 8), 1, net, with_coord=True, image_size=(8, 16))
    assert out.shape == (1, 2, 6, 16)


@pytest.mark.parametrize("head", ["nerdc", "nerdm"])
def test_torchscript(head, tmp_path, randomise_head):
    net = randomise_head(NeRDUNet(2, 1, 2, head=head, **SMALL)).eval()
    x = torch.randn(2, 1, 12, 12)
    scripted = convert_to_torchscript(net, tmp_path / "nerd.pt", verify=True, inputs=[x], device=torch.device("cpu"))
    torch.testing.assert_close(scripted(x), net(x))
    net.position = "global"
    scripted = convert_to_torchscript(net, verify=True, inputs=[x, torch.tensor([[0, 4], [4, 0]]), [16, 16]],
                                      device=torch.device("cpu"))
    slices = [[slice(0, 1), slice(None), slice(0, 12), slice(4, 16)], [slice(1, 2), slice(None), slice(4, 16),
                                                                       slice(0, 12)]]
    with torch.no_grad():
        torch.testing.assert_close(scripted(x, torch.tensor([[0, 4], [4, 0]]), [16, 16]), net(x, slices, [16, 16]))


def test_hyper_backbone_bakes_to_torchscript(randomise_head):
    net = randomise_head(NeRDUNet(2, 1, 2, backbone="hyper", **SMALL)).eval()
    x = torch.randn(1, 1, 12, 12)
    baked = bake(net)
    assert not any(type(m).__name__ == "HyperConv" for m in baked.modules())
    scripted = convert_to_torchscript(baked, verify=True, inputs=[x], device=torch.device("cpu"))
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), net(x), rtol=1e-4, atol=1e-5)
