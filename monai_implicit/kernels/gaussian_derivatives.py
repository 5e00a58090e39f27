"""Scale-normalised Gaussian-derivative bases: the kernels of N-Jet layers ("Resolution
learning in deep convolutional networks using scale-space theory", Pintea, Tomen et al.; Sec. 3).

A filter of an N-Jet layer is a truncated Taylor series: a linear combination of the partial derivatives of a
Gaussian of scale ``sigma`` up to total order ``N`` (Eq. 5).  The 1D derivatives follow the Hermite
form of Eq. 2,

    ``G^m(x; sigma) = (-1 / (sigma sqrt 2))^m H_m(x / (sigma sqrt 2)) G(x; sigma)``,

with the physicists' Hermite polynomials ``H_m`` evaluated by their three-term recursion, so any order works (the
authors' code hard-codes the polynomials and stops at order 10).  As in the authors' code and in
``scipy.ndimage.gaussian_filter``, the sampled Gaussian ``G`` is normalised to sum 1 on the grid.  Every derivative
of order ``m`` is multiplied by ``sigma^m`` (scale normalisation, Sec. 3 and Fig. 4) so all basis
filters have comparable magnitudes whatever ``sigma``.  N-D basis filters are products of 1D derivatives
(Eq. 3); there are ``C(N + D, D)`` of them.

The grid is tied to the scale (Sec. 3, "Learning scale and filter size"): integer offsets
``-h..h`` with half-size ``h = ceil(k sigma + 0.5)``, i.e. kernel sizes 5/7/11/19 for sigma 0.5/1/2/4 at ``k=2``.
With a physical ``spacing`` (mm per voxel) ``sigma`` is in millimetres and each axis gets its own half-size
``ceil(k sigma / spacing_d + 0.5)``: the same layer then sees the same physical scale on anisotropic volumes.
"""

from __future__ import annotations

import math
from itertools import product
from typing import Optional, Sequence, Union

import torch
from torch import nn

from monai_implicit.kernels.grids import as_spacing, check_spatial_dims
from monai_implicit.utils import check_int, check_number, is_integer

__all__ = [
    "derivative_orders",
    "hermite_polynomials",
    "njet_half_size",
    "njet_kernel_size",
    "gaussian_derivatives_1d",
    "GaussianDerivativeBasis",
]


def _check_order(order: int) -> int:
    if not is_integer(order):
        raise TypeError(f"order must be an int, got {type(order).__name__} ({order!r}).")
    if order < 0:
        raise ValueError(f"order must be >= 0 (the highest total derivative order of the basis), got {order}.")
    return order


def _check_positive(value: float, name: str) -> float:
    return check_number(value, name, low=0.0, low_open=True)


def derivative_orders(order: int, spatial_dims: int) -> list[tuple[int, ...]]:
    """Multi-indices ``(n_1, ..., n_D)`` of all partial derivatives with total order ``<= order``.

    Sorted by total order, then lexicographically descending (``(0,0), (1,0), (0,1), (2,0), (1,1), (0,2), ...``):
    the first ``C(n + D, D)`` entries are the basis of order ``n``, so bases of different orders are nested.
    There are ``C(order + D, D)`` of them: ``(N+1)(N+2)/2`` in 2D, ``(N+1)(N+2)(N+3)/6`` in 3D (N-Jet paper,
    Eq. 5).
    """
    _check_order(order)
    check_spatial_dims(spatial_dims)
    combos = [c for c in product(range(order + 1), repeat=spatial_dims) if sum(c) <= order]
    return sorted(combos, key=lambda c: (sum(c), tuple(-v for v in c)))


def hermite_polynomials(x: torch.Tensor, order: int) -> torch.Tensor:
    """Physicists' Hermite polynomials ``H_0..H_order`` at ``x`` via ``H_n = 2x H_{n-1} - 2(n-1) H_{n-2}``.

    Shapes: ``x`` any shape ``S`` -> ``(order + 1, *S)``.  Differentiable with respect to ``x``.
    """
    _check_order(order)
    polys = [torch.ones_like(x)]
    if order >= 1:
        polys.append(2.0 * x)
    for n in range(2, order + 1):
        polys.append(2.0 * x * polys[n - 1] - 2.0 * (n - 1) * polys[n - 2])
    return torch.stack(polys, dim=0)


def njet_half_size(sigma: float, k: float = 2.0, spacing: float = 1.0) -> int:
    """Half-size ``ceil(k sigma / spacing + 0.5)`` of the N-Jet grid (N-Jet paper, Sec. 3)."""
    _check_positive(sigma, "sigma")
    _check_positive(k, "k")
    _check_positive(spacing, "spacing")
    return int(math.ceil(k * sigma / spacing + 0.5))


def njet_kernel_size(sigma: float, k: float = 2.0, spacing: float = 1.0) -> int:
    """Kernel size ``2 ceil(k sigma / spacing + 0.5) + 1``: 5/7/11/19 for sigma 0.5/1/2/4 at ``k=2``."""
    return 2 * njet_half_size(sigma, k, spacing) + 1


def gaussian_derivatives_1d(
    sigma: torch.Tensor, order: int, half_size: int, spacing: float = 1.0, scale_normalized: bool = True
) -> torch.Tensor:
    """Sampled 1D Gaussian derivatives of orders ``0..order`` on the offsets ``-half_size..half_size``.

    ``G`` is normalised to sum 1 on the grid (as ``scipy.ndimage.gaussian_filter``); ``G^m`` follows the N-Jet
    paper's Eq. 2 and is multiplied by ``sigma^m`` when ``scale_normalized``.  With ``spacing`` the offsets are
    ``i * spacing`` (``sigma`` in physical units).  Row ``m`` equals the impulse response of
    ``scipy.ndimage.gaussian_filter1d(impulse, sigma / spacing, order=m)`` times ``(sigma / spacing)^m``.

    Args:
        sigma: scalar tensor (0-d), differentiable: the gradient flows through the sampled values.
        order: highest derivative order ``N >= 0``.
        half_size: ``h``; the grid has ``2h + 1`` taps.
        spacing: physical size of one tap.
        scale_normalized: multiply order ``m`` by ``sigma^m`` (N-Jet paper, Sec. 3).

    Returns:
        Tensor ``(order + 1, 2 * half_size + 1)`` with the dtype and device of ``sigma``.
    """
    _check_order(order)
    if not isinstance(sigma, torch.Tensor) or sigma.ndim != 0 or not sigma.is_floating_point():
        raise TypeError(f"sigma must be a 0-d floating-point tensor, got {sigma!r}.")
    check_int(half_size, "half_size", 0)
    if not bool(sigma.detach() > 0):
        raise ValueError(f"sigma must be positive, got {float(sigma.detach())}.")
    x = torch.arange(-half_size, half_size + 1, dtype=sigma.dtype, device=sigma.device) * spacing
    u = x / (sigma * math.sqrt(2.0))
    gauss = torch.exp(-(u * u))
    gauss = gauss / gauss.sum()
    # (-1/(sigma sqrt 2))^m sigma^m = (-1/sqrt 2)^m: normalisation makes the table a function of x/sigma only
    factors = torch.tensor([(-1.0 / math.sqrt(2.0)) ** m for m in range(order + 1)], dtype=sigma.dtype,
                           device=sigma.device)
    table = factors[:, None] * hermite_polynomials(u, order) * gauss[None, :]
    if not scale_normalized:
        table = table / sigma ** torch.arange(order + 1, dtype=sigma.dtype, device=sigma.device)[:, None]
    return table


class GaussianDerivativeBasis(nn.Module):
    """N-D scale-normalised Gaussian-derivative basis of total order ``<= order`` (N-Jet paper, Sec. 3, Eq. 2-5).

    The module has no parameters: ``sigma`` is an input, so a layer can learn it and receive its gradient through
    the sampled values.  The grid follows ``sigma`` (half-size ``ceil(k sigma / spacing_d + 0.5)`` per axis), so
    the kernel grows and shrinks with the scale.

    Args:
        spatial_dims: 1, 2 or 3.
        order: highest total derivative order ``N >= 0`` (any order; 2-4 in the paper's segmentation networks).
        k: extent of the grid in units of sigma (2 in the paper).
        max_kernel_size: the largest admissible kernel size per axis; a sigma that needs a larger grid raises a
            ValueError instead of silently truncating the Gaussian.  None: no limit.
        spacing: optional physical voxel size (one value or one per axis); sigma is then in the same unit.
        scale_normalized: multiply every order-``m`` derivative by ``sigma^m`` (default, N-Jet paper, Fig. 4).

    Shapes:
        ``forward(sigma)`` -> ``(F, *k)`` with ``F = C(order + D, D)`` in the order of
        :func:`derivative_orders`; ``factors(sigma)`` -> one ``(order + 1, k_d)`` table per axis, from which
        basis filter ``f`` is the outer product of rows ``orders[f][d]``.
    """

    def __init__(
        self,
        spatial_dims: int,
        order: int = 2,
        k: float = 2.0,
        max_kernel_size: Optional[int] = None,
        spacing: Optional[Union[float, Sequence[float]]] = None,
        scale_normalized: bool = True,
    ) -> None:
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.order = _check_order(order)
        self.k = _check_positive(k, "k")
        self.max_kernel_size = check_int(max_kernel_size, "max_kernel_size", allow_none=True)
        self.spacing = as_spacing(spacing, spatial_dims) or (1.0,) * spatial_dims
        self.scale_normalized = bool(scale_normalized)
        self.orders = derivative_orders(order, spatial_dims)

    @property
    def num_filters(self) -> int:
        """``F = C(order + D, D)``."""
        return len(self.orders)

    @staticmethod
    def _sigma_value(sigma: Union[float, torch.Tensor]) -> float:
        value = float(sigma.detach()) if isinstance(sigma, torch.Tensor) else sigma
        return _check_positive(value, "sigma")

    def half_sizes(self, sigma: Union[float, torch.Tensor]) -> tuple[int, ...]:
        """Half-size of the grid on every axis for this ``sigma`` (validated against ``max_kernel_size``)."""
        value = self._sigma_value(sigma)
        halves = tuple(njet_half_size(value, self.k, s) for s in self.spacing)
        sizes = tuple(2 * h + 1 for h in halves)
        if self.max_kernel_size is not None and max(sizes) > self.max_kernel_size:
            raise ValueError(
                f"sigma={value:.4g} with k={self.k:g} needs a kernel of size {sizes}, larger than "
                f"max_kernel_size={self.max_kernel_size}; lower sigma (or its range) or raise max_kernel_size."
            )
        return halves

    def kernel_size(self, sigma: Union[float, torch.Tensor]) -> tuple[int, ...]:
        """Kernel size on every axis, ``2 ceil(k sigma / spacing_d + 0.5) + 1``."""
        return tuple(2 * h + 1 for h in self.half_sizes(sigma))

    def _as_tensor(self, sigma: Union[float, torch.Tensor]) -> torch.Tensor:
        if isinstance(sigma, torch.Tensor):
            if sigma.numel() != 1:
                raise ValueError(f"sigma must be a scalar (one scale per basis), got shape {tuple(sigma.shape)}.")
            sigma = sigma.reshape(())
            return sigma if sigma.is_floating_point() else sigma.to(torch.get_default_dtype())
        return torch.tensor(self._sigma_value(sigma), dtype=torch.get_default_dtype())

    def factors(self, sigma: Union[float, torch.Tensor]) -> list[torch.Tensor]:
        """One table ``(order + 1, k_d)`` of 1D derivatives per axis (the separable form of the basis)."""
        sigma = self._as_tensor(sigma)
        halves = self.half_sizes(sigma)
        cache: dict[tuple[int, float], torch.Tensor] = {}
        tables = []
        for h, s in zip(halves, self.spacing):
            if (h, s) not in cache:  # isotropic grids share one table
                cache[(h, s)] = gaussian_derivatives_1d(sigma, self.order, h, s, self.scale_normalized)
            tables.append(cache[(h, s)])
        return tables

    def forward(self, sigma: Union[float, torch.Tensor]) -> torch.Tensor:
        """The dense basis ``(F, *k)`` for scale ``sigma`` (a float or a 0-d tensor that may require grad)."""
        tables = self.factors(sigma)
        letters = "abc"[: self.spatial_dims]
        # per axis pick the rows of each multi-index, then one outer product over the axes for all F filters
        rows = [t[torch.tensor([c[d] for c in self.orders], device=t.device)] for d, t in enumerate(tables)]
        expr = ",".join(f"f{letter}" for letter in letters) + "->f" + letters
        return torch.einsum(expr, *rows)

    def extra_repr(self) -> str:
        s = f"spatial_dims={self.spatial_dims}, order={self.order}, k={self.k:g}, num_filters={self.num_filters}"
        if self.max_kernel_size is not None:
            s += f", max_kernel_size={self.max_kernel_size}"
        if any(v != 1.0 for v in self.spacing):
            s += f", spacing={self.spacing}"
        return s
