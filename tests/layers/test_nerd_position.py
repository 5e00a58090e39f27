"""Position encoding of NeRD: values against a naive loop, corners, centre, global windows.

Reference: "NeRD: Neural Representation of Distribution for Medical Image Segmentation" (Zhang et al.), Sec. 2.1.
"""

import itertools

import numpy as np
import pytest
import torch

from monai_implicit.layers.nerd import PositionEncoding, position_encoding, window_origins


def naive_positions(shape, origin=None, image_size=None):
    """Loop over voxels: distance of the voxel centre to the low/high border of the image, divided by its size."""
    ndim = len(shape)
    origin = [0] * ndim if origin is None else list(origin)
    image_size = list(shape) if image_size is None else list(image_size)
    out = np.zeros((2 * ndim, *shape))
    for idx in itertools.product(*[range(n) for n in shape]):
        for d in range(ndim):
            centre = origin[d] + idx[d] + 0.5  # continuous coordinate of the voxel centre; the border is at 0
            out[(d, *idx)] = centre / image_size[d]
            out[(ndim + d, *idx)] = (image_size[d] - centre) / image_size[d]
    return out


@pytest.mark.parametrize("shape", [(5,), (7, 5), (3, 5, 7), (1, 4, 3)])
def test_patch_positions_match_naive_loop(shape):
    pos = position_encoding(list(shape))
    assert pos.shape == (1, 2 * len(shape), *shape)
    np.testing.assert_allclose(pos[0].double().numpy(), naive_positions(shape), atol=1e-6)


def test_corner_and_centre_values_2d_odd():
    n0, n1 = 5, 7
    pos = position_encoding([n0, n1])[0]
    # channels (low_0, low_1, high_0, high_1) = (top, left, bottom, right) distances
    np.testing.assert_allclose(pos[:, 0, 0].numpy(), [0.5 / n0, 0.5 / n1, 1 - 0.5 / n0, 1 - 0.5 / n1], atol=1e-7)
    np.testing.assert_allclose(pos[:, -1, -1].numpy(), [1 - 0.5 / n0, 1 - 0.5 / n1, 0.5 / n0, 0.5 / n1], atol=1e-7)
    np.testing.assert_allclose(pos[:, 0, -1].numpy(), [0.5 / n0, 1 - 0.5 / n1, 1 - 0.5 / n0, 0.5 / n1], atol=1e-7)
    # the centre voxel of an odd-sized image is equidistant from all borders
    np.testing.assert_allclose(pos[:, n0 // 2, n1 // 2].numpy(), [0.5] * 4, atol=1e-7)


def test_corner_and_centre_values_3d_odd():
    shape = (3, 5, 9)
    pos = position_encoding(list(shape))[0]
    corner = [0.5 / n for n in shape] + [1 - 0.5 / n for n in shape]
    np.testing.assert_allclose(pos[:, 0, 0, 0].numpy(), corner, atol=1e-7)
    opposite = [1 - 0.5 / n for n in shape] + [0.5 / n for n in shape]
    np.testing.assert_allclose(pos[:, -1, -1, -1].numpy(), opposite, atol=1e-7)
    np.testing.assert_allclose(pos[:, 1, 2, 4].numpy(), [0.5] * 6, atol=1e-7)
    # mirror symmetry: flipping an axis swaps its low and high channels
    np.testing.assert_allclose(pos[0].flip(0).numpy(), pos[3].numpy(), atol=1e-7)
    # low + high = 1 on every axis
    np.testing.assert_allclose((pos[:3] + pos[3:]).numpy(), np.ones((3, *shape)), atol=1e-6)


def test_single_voxel_axis_is_defined():
    pos = position_encoding([1, 3])[0]
    assert torch.isfinite(pos).all()
    np.testing.assert_allclose(pos[0].numpy(), 0.5)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_global_equals_patch_for_the_whole_image(spatial_dims):
    shape = [5, 6, 7][:spatial_dims]
    patch = PositionEncoding(spatial_dims, "patch")(torch.zeros(2, 1, *shape))
    glob = PositionEncoding(spatial_dims, "global")(torch.zeros(2, 1, *shape), torch.zeros(2, spatial_dims), shape)
    assert glob.shape == (2, 2 * spatial_dims, *shape)
    torch.testing.assert_close(glob, patch.expand_as(glob), rtol=0, atol=0)


def test_global_windows_are_crops_of_the_whole_image_encoding():
    image_size = [11, 9, 6]
    window = [4, 5, 3]
    origins = torch.tensor([[0, 0, 0], [7, 4, 3], [3, 2, 1]])
    pos = position_encoding(window, origins, image_size, dtype=torch.float64)
    full = naive_positions(image_size)
    for b, o in enumerate(origins.tolist()):
        crop = full[(slice(None), *[slice(s, s + n) for s, n in zip(o, window)])]
        np.testing.assert_allclose(pos[b].numpy(), crop, atol=1e-12)


def test_dtype_and_device_follow_the_input():
    x = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    assert PositionEncoding(2)(x).dtype == torch.float64


def test_window_origins_from_sliding_window_slices():
    # the structure sliding_window_inference(with_coord=True) passes: one list per window of the batch
    coords = [
        [slice(0, 1), slice(None), slice(np.int64(4), np.int64(12)), slice(0, 8)],
        [slice(1, 2), slice(None), slice(2, 10), slice(6, 14)],
    ]
    torch.testing.assert_close(window_origins(coords, [8, 8], 2), torch.tensor([[4, 0], [2, 6]]))
    # spatial slices only, and a single window
    torch.testing.assert_close(window_origins([slice(1, 9), slice(3, 11)], [8, 8]), torch.tensor([[1, 3]]))
    torch.testing.assert_close(window_origins(torch.tensor([2, 3]), [8, 8]), torch.tensor([[2, 3]]))
    torch.testing.assert_close(window_origins([[2, 3], [0, 1]], [8, 8], 2), torch.tensor([[2, 3], [0, 1]]))


def test_window_origins_errors():
    with pytest.raises(ValueError, match="does not match the input size"):
        window_origins([[slice(0, 1), slice(None), slice(0, 7), slice(0, 8)]], [8, 8])
    with pytest.raises(ValueError, match="spatial slices"):
        window_origins([[slice(0, 1), slice(0, 8), slice(0, 8)]], [8, 8])
    with pytest.raises(ValueError, match="window origins for a batch of 3"):
        window_origins(torch.zeros(2, 2), [8, 8], 3)
    with pytest.raises(ValueError, match=r"shape \(B, 2\)"):
        window_origins(torch.zeros(2, 3), [8, 8])
    with pytest.raises(TypeError, match="coords must be"):
        window_origins("left", [8, 8])
    with pytest.raises(ValueError, match="explicit start"):
        window_origins([slice(None, 8), slice(0, 8)], [8, 8])


def test_position_encoding_errors():
    enc = PositionEncoding(2, "global")
    x = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="global positions need the window origin"):
        enc(x)
    with pytest.raises(ValueError, match="global positions need the window origin"):
        enc(x, torch.zeros(1, 2))
    with pytest.raises(ValueError, match="leaves the image"):
        enc(x, torch.tensor([[0, 3]]), [8, 6])
    with pytest.raises(ValueError, match="leaves the image"):
        enc(x, torch.tensor([[-1, 0]]), [8, 8])
    with pytest.raises(ValueError, match="image_size must have 2"):
        enc(x, torch.zeros(1, 2), [8, 8, 8])
    with pytest.raises(ValueError, match="window origins for a batch of 1"):
        enc(x, torch.zeros(3, 2), [8, 8])
    with pytest.raises(ValueError, match="position mode must be one of"):
        PositionEncoding(2, "absolute")
    with pytest.raises(ValueError, match="2 spatial dims"):
        PositionEncoding(2)(torch.zeros(1, 1, 4, 4, 4))
    with pytest.raises(ValueError, match="spatial_dims"):
        PositionEncoding(4)
