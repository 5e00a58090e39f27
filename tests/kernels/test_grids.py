"""Coordinate grids: the integer-offset (hyper-convolution) and unit (FlexConv) conventions."""

import pytest
import torch

from monai_implicit.kernels.grids import as_kernel_size, as_spacing, kernel_grid


@pytest.mark.parametrize("kernel_size", [(5,), (3, 5), (5, 5, 3), (1, 3, 7)])
def test_offset_grid_is_integer_offsets_from_centre(kernel_size):
    grid = kernel_grid(kernel_size, "offset")
    assert grid.shape == (len(kernel_size), *kernel_size)
    for d, k in enumerate(kernel_size):
        # independent expectation: coordinate along axis d of tap i is i - (k - 1) / 2, constant on other axes
        expected = torch.arange(k, dtype=torch.float32) - (k - 1) // 2
        view = [1] * len(kernel_size)
        view[d] = k
        assert torch.equal(grid[d], expected.reshape(view).expand(kernel_size))
    centre = tuple(k // 2 for k in kernel_size)
    assert torch.count_nonzero(grid[(slice(None), *centre)]) == 0


def test_unit_grid_spans_minus_one_to_one_and_spacing_scales_axes():
    grid = kernel_grid((5, 3), "unit")
    assert torch.allclose(grid[0, :, 0], torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]))
    assert torch.allclose(grid[1, 0, :], torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.equal(kernel_grid((1,), "unit"), torch.zeros(1, 1))
    scaled = kernel_grid((5, 5, 3), "offset", spacing=(0.8, 0.8, 3.0))
    assert torch.allclose(scaled[2, 0, 0], torch.tensor([-3.0, 0.0, 3.0]))
    assert torch.allclose(scaled[0, :, 0, 0], torch.tensor([-1.6, -0.8, 0.0, 0.8, 1.6]))


def test_kernel_size_expansion_and_errors():
    assert as_kernel_size(5, 3) == (5, 5, 5)
    assert as_kernel_size((5, 5, 3), 3) == (5, 5, 3)
    assert as_kernel_size([3], 2) == (3, 3)
    with pytest.raises(ValueError, match="odd"):
        as_kernel_size(4, 2)
    with pytest.raises(ValueError, match="positive"):
        as_kernel_size((3, 0), 2)
    with pytest.raises(ValueError, match="positive"):
        as_kernel_size(-3, 2)
    with pytest.raises(ValueError, match="spatial_dims"):
        as_kernel_size((3, 3), 3)
    with pytest.raises(ValueError, match="spatial_dims must be 1, 2 or 3"):
        as_kernel_size(3, 4)
    with pytest.raises(TypeError):
        as_kernel_size("3", 2)
    assert as_kernel_size(4, 2, odd=False) == (4, 4)
    with pytest.raises(ValueError, match="positive"):
        as_spacing((1.0, -2.0), 2)
    with pytest.raises(ValueError, match="convention"):
        kernel_grid((3,), "pixels")
