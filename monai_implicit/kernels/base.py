"""The skeleton every kernel network shares: coordinates ``(D, *grid)`` -> kernel ``(C_out, C_in, *grid)``.

A kernel network is an MLP applied independently at every kernel tap, mapping the ``D`` coordinates of the tap to
the ``C_out * C_in`` weights of that tap: the hyper-network of "Hyper-Convolutions via Implicit Kernels for Medical
Imaging" (Ma, Wang, Dalca, Sabuncu; Sec. 3.1), the SIREN of "Continuous representation of kernels used in
convolutional neural networks" (Jonker; Sec. 3.1) and the MAGNet of "FlexConv: Continuous Kernel Convolutions with
Differentiable Kernel Sizes" (Romero, Bruintjes et al.; Sec. 3.2).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import nn

from monai_implicit.kernels.grids import as_kernel_size, check_spatial_dims, kernel_grid
from monai_implicit.utils import check_positive_int

__all__ = ["KernelNetwork"]


class KernelNetwork(nn.Module):
    """Base class of the kernel networks (:class:`~monai_implicit.kernels.hyper.HyperKernel`,
    :class:`~monai_implicit.kernels.siren.SirenKernel`, :class:`~monai_implicit.kernels.magnet.MAGNetKernel`).

    Validates the common arguments, holds the default coordinate grid (a non-persistent buffer ``grid``, derived
    from ``kernel_size``: never saved, so checkpoints hold only the network's own parameters) and turns the per-tap
    output of :meth:`tap_values` into a kernel.  A subclass builds its layers, with ``self.out`` the last
    ``nn.Linear`` (``C_in * C_out`` outputs; its dtype is the dtype the coordinates are cast to), and implements
    :meth:`tap_values`.

    Args:
        spatial_dims: number of coordinates per tap (1, 2 or 3).
        in_channels: ``C_in`` of the convolution (per group).
        out_channels: ``C_out`` of the convolution.
        kernel_size: extent of the default grid (one int per axis or one for all).
        convention: grid convention of :func:`~monai_implicit.kernels.grids.kernel_grid`, ``"offset"`` or ``"unit"``.
        odd: require odd kernel sizes.
        spacing: optional physical voxel size per axis that scales the default grid (already validated).

    Shapes:
        ``forward()`` -> ``(C_out, C_in, *kernel_size)``; ``forward(coords)`` with coords ``(D, *grid)`` ->
        ``(C_out, C_in, *grid)``.
    """

    out: nn.Linear

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: Union[int, Sequence[int]],
        convention: str = "unit",
        odd: bool = False,
        spacing: Optional[Sequence[float]] = None,
    ) -> None:
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.kernel_size = as_kernel_size(kernel_size, spatial_dims, odd=odd)
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        # the default grid is derived state, not a parameter: rebuilt from kernel_size/spacing, never saved
        self.register_buffer("grid", kernel_grid(self.kernel_size, convention, spacing), persistent=False)

    def tap_values(self, taps: torch.Tensor) -> torch.Tensor:
        """The network itself: coordinates ``(K, D)`` of ``K`` taps -> ``(K, C_out * C_in)`` weights."""
        raise NotImplementedError(f"{type(self).__name__} must implement tap_values().")

    def forward(self, coords: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Sample the kernel on ``coords`` ``(D, *grid)`` (default: the grid of ``kernel_size``)."""
        grid = self.grid if coords is None else coords
        if not isinstance(grid, torch.Tensor) or grid.ndim < 1 or grid.shape[0] != self.spatial_dims:
            shape = tuple(grid.shape) if isinstance(grid, torch.Tensor) else type(grid).__name__
            raise ValueError(f"coords must have shape ({self.spatial_dims}, *grid), got {shape}.")
        taps = grid.reshape(self.spatial_dims, -1).t().to(self.out.bias.dtype)  # (K, D)
        return self.tap_values(taps).t().reshape(self.out_channels, self.in_channels, *grid.shape[1:])

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"
