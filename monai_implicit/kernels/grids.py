"""Coordinate grids on which kernel networks are sampled.

Two conventions are used by the papers this package implements:

* ``"offset"`` ("Hyper-Convolutions via Implicit Kernels for Medical Imaging", Ma et al.,
  Sec. 3): integer offsets from the kernel centre,
  e.g. ``-2..2`` for a kernel of size 5.  The kernel of size 3 is then exactly the centre of the kernel of
  size 5 for the same kernel network.
* ``"unit"`` (FlexConv / CKConv: "FlexConv: Continuous Kernel Convolutions with Differentiable
  Kernel Sizes", Romero et al., Sec. 3): ``linspace(-1, 1, size)`` per axis, so the
  kernel network sees the same coordinate range whatever the kernel size.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

from monai_implicit.utils import check_ints, check_numbers, check_option, is_integer

__all__ = ["as_kernel_size", "as_spacing", "kernel_grid", "GRID_CONVENTIONS"]

GRID_CONVENTIONS = ("offset", "unit")


def as_kernel_size(
    kernel_size: Union[int, Sequence[int]], spatial_dims: int, odd: bool = True, name: str = "kernel_size"
) -> tuple[int, ...]:
    """Validate and expand ``kernel_size`` to one positive integer per spatial axis.

    Args:
        kernel_size: an int (same size on every axis) or one int per axis, e.g. ``(5, 5, 3)`` for thick-slice CT.
        spatial_dims: number of spatial dimensions (1, 2 or 3).
        odd: require odd sizes (a kernel with a centre voxel, as "same" padding needs).
        name: argument name used in error messages.

    Raises:
        ValueError: if spatial_dims is not 1, 2 or 3, if the length does not match, or a size is not a positive
            (odd) integer.
    """
    check_spatial_dims(spatial_dims)
    if not is_integer(kernel_size) and (not isinstance(kernel_size, Sequence) or isinstance(kernel_size, str)):
        raise TypeError(f"{name} must be an int or a sequence of {spatial_dims} ints, got {kernel_size!r}.")
    if isinstance(kernel_size, Sequence) and len(kernel_size) not in (1, spatial_dims):
        raise ValueError(
            f"{name} must have 1 or spatial_dims={spatial_dims} entries, got {len(kernel_size)}: {tuple(kernel_size)}."
        )
    sizes = check_ints(kernel_size, name, spatial_dims)
    if odd and any(k % 2 == 0 for k in sizes):
        raise ValueError(f"{name} entries must be odd (a kernel with a centre voxel), got {sizes}.")
    return sizes


def check_spatial_dims(spatial_dims: int) -> int:
    """Raise a ValueError unless ``spatial_dims`` is 1, 2 or 3."""
    if not is_integer(spatial_dims) or spatial_dims not in (1, 2, 3):
        raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}.")
    return int(spatial_dims)


def as_spacing(spacing: Optional[Union[float, Sequence[float]]], spatial_dims: int) -> Optional[tuple[float, ...]]:
    """Validate an optional physical spacing: None, one positive finite float, or one per axis.

    Raises:
        ValueError: wrong number of entries, or an entry that is not positive and finite (NaN and inf included:
            a NaN spacing would make every sampled kernel, hence every output, NaN).
        TypeError: an entry that is not a real number.
    """
    if spacing is None:
        return None
    return check_numbers(spacing, "spacing", spatial_dims, low=0.0, low_open=True)


def kernel_grid(
    kernel_size: Sequence[int],
    convention: str = "offset",
    spacing: Optional[Sequence[float]] = None,
    dtype: torch.dtype = torch.float32,
    device: Optional[Union[str, torch.device]] = None,
) -> torch.Tensor:
    """Coordinates of every kernel tap.

    Args:
        kernel_size: one size per spatial axis (``len(kernel_size) = D``).
        convention: ``"offset"``: integer offsets ``-(k-1)/2 .. (k-1)/2`` (hyper-convolution);
            ``"unit"``: ``linspace(-1, 1, k)`` (FlexConv/CKConv); a size-1 axis is 0.
        spacing: optional physical voxel size per axis; the coordinates of each axis are multiplied by it, so a
            kernel network sees millimetres rather than voxels (useful when the same weights are applied to
            volumes of different resolution).
        dtype: floating dtype of the result.
        device: device of the result.

    Returns:
        Tensor of shape ``(D, *kernel_size)``; entry ``[d, i_1, ..., i_D]`` is the coordinate along axis ``d`` of
        the tap ``(i_1, ..., i_D)`` (``indexing="ij"``).
    """
    check_option(convention, GRID_CONVENTIONS, "convention")
    axes = []
    for k in kernel_size:
        if convention == "offset":
            axis = torch.arange(k, dtype=dtype, device=device) - (k - 1) / 2.0
        else:
            axis = torch.linspace(-1.0, 1.0, k, dtype=dtype, device=device) if k > 1 else torch.zeros(
                1, dtype=dtype, device=device)
        axes.append(axis)
    if spacing is not None:
        if len(spacing) != len(kernel_size):
            raise ValueError(f"spacing needs {len(kernel_size)} entries, got {len(spacing)}.")
        axes = [a * float(s) for a, s in zip(axes, spacing)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=0)
