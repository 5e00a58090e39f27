"""Multiplicative Anisotropic Gabor Network (MAGNet), the kernel network of FlexConv ("FlexConv: Continuous Kernel
Convolutions with Differentiable Kernel Sizes", Romero, Bruintjes et al., Sec. 3.2, Eqs. 2-7 and Appx. A.1), for any
number of spatial dimensions.

``h_0 = g_0(x)``, ``h_l = (W_l h_{l-1} + b_l) * g_l(x)`` for ``l = 1..L``, ``psi = W_out h_L + b_out`` with
anisotropic Gabor filters
``g_l(x)_i = exp(-1/2 sum_d (gamma_{l,i,d} (x_d - mu_{l,i,d}))^2) * sin(W_{g,l,i} . x + b_{g,l,i})``
(one ``gamma`` and ``mu`` per hidden unit *and axis*: the paper's 2D square construction generalised to N-D and to
anisotropic grids).

Published initialisation (the authors' code), ``l = 0..L``:

* ``gamma_l ~ Gamma(alpha / (l + 1), beta)`` per unit and axis (``alpha = 6``, ``beta = 1``);
* ``mu_l ~ U(-1, 1) * init_spatial_value``;
* ``W_{g,l} = U(-1/sqrt(D), 1/sqrt(D)) * input_scale / sqrt(L + 1) * gamma_l`` (PyTorch's default linear init,
  scaled per unit and axis by its envelope); ``b_{g,l} ~ U(-pi, pi)``;
* hidden linears ``W_l ~ U(-sqrt(1/H), sqrt(1/H))``, biases PyTorch's default; output linear PyTorch's default.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import torch
from torch import nn

from monai_implicit.kernels.base import KernelNetwork
from monai_implicit.utils import check_number, check_positive_int

__all__ = ["MAGNetKernel", "GaborFilter"]


class GaborFilter(nn.Module):
    """One anisotropic Gabor layer ``g_l`` of a MAGNet (FlexConv paper, Eq. 7, N-D).

    Attributes:
        linear: ``nn.Linear(D, H)``; its weight ``(H, D)`` is ``W_g`` (the sine frequencies, radians per unit).
        gamma: ``(H, D)`` inverse widths of the Gaussian envelopes.
        mu: ``(H, D)`` centres of the envelopes.

    Shapes: ``(K, D)`` coordinates -> ``(K, H)``.
    """

    def __init__(
        self, spatial_dims: int, hidden: int, input_scale: float, alpha: float, beta: float, init_spatial_value: float
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(spatial_dims, hidden)
        gamma = torch.distributions.Gamma(torch.tensor(float(alpha)), torch.tensor(float(beta))).sample(
            (hidden, spatial_dims)
        )
        self.gamma = nn.Parameter(gamma)
        self.mu = nn.Parameter(init_spatial_value * (2.0 * torch.rand(hidden, spatial_dims) - 1.0))
        with torch.no_grad():
            self.linear.weight.mul_(input_scale * gamma)
            self.linear.bias.uniform_(-math.pi, math.pi)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        envelope = torch.exp(-0.5 * ((self.gamma * (x.unsqueeze(1) - self.mu)) ** 2).sum(-1))  # (K, H)
        return envelope * torch.sin(self.linear(x))


class MAGNetKernel(KernelNetwork):
    """Coordinates -> kernel weights through a MAGNet (FlexConv paper, Sec. 3.2).

    Parameters: ``(L + 1)(3 H D + H) + L (H^2 + H) + (H + 1) C_in C_out``.

    Args:
        spatial_dims: number of coordinates per tap (1, 2 or 3).
        in_channels: ``C_in`` of the convolution (per group).
        out_channels: ``C_out`` of the convolution.
        kernel_size: extent of the default grid ``linspace(-1, 1, k)`` per axis (anisotropic sizes allowed).
        hidden: hidden width ``H`` (32).
        num_layers: ``L``, the number of hidden linears; the network has ``L + 1`` Gabor filters (3 -> 4 filters).
        input_scale: frequency scale of the sine terms, 25.6 in the paper (Appx. D).
        alpha: shape of the Gamma prior of ``gamma``, divided by ``l + 1`` at filter ``l``.
        beta: rate of the Gamma prior.
        init_spatial_value: half-range of the uniform init of the envelope centres ``mu``.

    Shapes:
        ``forward()`` -> ``(C_out, C_in, *kernel_size)``; ``forward(coords)`` with coords ``(D, *grid)`` ->
        ``(C_out, C_in, *grid)``.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: Union[int, Sequence[int]],
        hidden: int = 32,
        num_layers: int = 3,
        input_scale: float = 25.6,
        alpha: float = 6.0,
        beta: float = 1.0,
        init_spatial_value: float = 1.0,
    ) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, kernel_size, "unit")
        check_positive_int(hidden, "hidden")
        check_positive_int(num_layers, "num_layers")
        for name, value in (("input_scale", input_scale), ("alpha", alpha), ("beta", beta),
                            ("init_spatial_value", init_spatial_value)):
            check_number(value, name, low=0.0, low_open=True)
        self.input_scale = float(input_scale)
        scale = input_scale / math.sqrt(num_layers + 1)
        self.filters = nn.ModuleList(
            GaborFilter(spatial_dims, hidden, scale, alpha / (layer + 1), beta, init_spatial_value)
            for layer in range(num_layers + 1)
        )
        self.linears = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(num_layers))
        with torch.no_grad():
            for lin in self.linears:
                lin.weight.uniform_(-math.sqrt(1.0 / hidden), math.sqrt(1.0 / hidden))
        self.out = nn.Linear(hidden, in_channels * out_channels)

    def tap_values(self, taps: torch.Tensor) -> torch.Tensor:
        """``(K, D) -> (K, C_out * C_in)``: ``h_l = (W_l h_{l-1} + b_l) * g_l(x)``, then the output linear."""
        h = self.filters[0](taps)
        for gabor, lin in zip(self.filters[1:], self.linears):
            h = lin(h) * gabor(taps)
        return self.out(h)

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", hidden={self.out.in_features}, num_layers={len(self.linears)}, "
                f"input_scale={self.input_scale}")
