"""Coordinate grids and kernel networks (coords -> weights); they know nothing about convolution."""

from .base import KernelNetwork
from .gaussian_derivatives import GaussianDerivativeBasis, derivative_orders, gaussian_derivatives_1d, njet_kernel_size
from .grids import as_kernel_size, as_spacing, check_spatial_dims, kernel_grid
from .hyper import HyperKernel
from .magnet import MAGNetKernel
from .siren import SirenKernel
