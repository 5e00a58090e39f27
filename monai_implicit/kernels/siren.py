"""SIREN kernel network of CKConv (Sitzmann et al. 2020; "Continuous representation of kernels used in convolutional
neural networks", Jonker, Sec. 3.1, Eqs. 1-3).

``phi_1(x) = sin(omega_0 (W_1 x + b_1))``, ``phi_l(h) = sin(omega_0 (W_l h + b_l))``, ``psi = W_out h + b_out``:
coordinates ``(D,)`` on the ``"unit"`` grid ``linspace(-1, 1, k)`` -> ``C_out * C_in`` kernel values per tap.

Initialisation (the SIREN paper's, as in the CKConv authors' code), kept exactly: first layer
``W ~ U(-1/D, 1/D)``, every later layer (the output layer included)
``W ~ U(-sqrt(6 / fan_in) / omega_0, +sqrt(6 / fan_in) / omega_0)``; biases keep PyTorch's default
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.  The CKConv authors wrap the layers in weight normalisation *before* this
init, which silently replaces it; here ``weight_norm=True`` reparameterises *after* the init
(``torch.nn.utils.parametrizations.weight_norm`` sets ``g = ||v||``, ``v = W``), so the initial kernel is unchanged.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Sequence, Union

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm as _weight_norm

from monai_implicit.kernels.base import KernelNetwork
from monai_implicit.utils import check_positive_int

__all__ = ["SirenKernel", "check_omega_0"]


def check_omega_0(omega_0: float) -> float:
    """Return ``omega_0`` as a float; raise unless it is a finite number > 0 (the SIREN frequency factor)."""
    if isinstance(omega_0, bool) or not isinstance(omega_0, Real):
        raise TypeError(f"omega_0 must be a positive number, got {type(omega_0).__name__} {omega_0!r}.")
    if not math.isfinite(float(omega_0)) or float(omega_0) <= 0:
        raise ValueError(f"omega_0 must be a finite number > 0 (30 for long kernels, ~8 for k=3), got {omega_0!r}.")
    return float(omega_0)


class SirenKernel(KernelNetwork):
    """Coordinates -> kernel weights through a sine MLP (Jonker's thesis, Sec. 3.1).

    Parameters: ``(D + 1) H + (L - 1)(H + 1) H + (H + 1) C_in C_out`` with ``H = hidden``, ``L = num_layers`` sine
    layers (the thesis: ``D = 1, H = 32, L = 2``).

    Args:
        spatial_dims: number of coordinates per tap (1, 2 or 3).
        in_channels: ``C_in`` of the convolution (per group).
        out_channels: ``C_out`` of the convolution.
        kernel_size: extent of the default grid (one int per axis or one for all; even sizes allowed).
        omega_0: frequency factor of every sine layer, > 0 (30 by default; 10-30 for long kernels, 8 for k=3).
        hidden: hidden width ``H`` (32).
        num_layers: number of sine layers ``L`` >= 1 (2 in the thesis: ``phi_2 o phi_1``).
        weight_norm: reparameterise every linear layer with weight normalisation, after the SIREN init.

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
        omega_0: float = 30.0,
        hidden: int = 32,
        num_layers: int = 2,
        weight_norm: bool = False,
    ) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, kernel_size, "unit")
        check_positive_int(hidden, "hidden")
        check_positive_int(num_layers, "num_layers")
        self.omega_0 = check_omega_0(omega_0)
        widths = [spatial_dims] + [hidden] * num_layers
        self.sines = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.out = nn.Linear(hidden, in_channels * out_channels)
        with torch.no_grad():
            self.sines[0].weight.uniform_(-1.0 / spatial_dims, 1.0 / spatial_dims)
            for layer in [*self.sines[1:], self.out]:
                bound = math.sqrt(6.0 / layer.in_features) / self.omega_0
                layer.weight.uniform_(-bound, bound)
        self.weight_norm = bool(weight_norm)
        if self.weight_norm:
            for layer in [*self.sines, self.out]:
                _weight_norm(layer)

    def tap_values(self, taps: torch.Tensor) -> torch.Tensor:
        """``(K, D) -> (K, C_out * C_in)``: the sine layers, then the linear output layer."""
        h = taps
        for layer in self.sines:
            h = torch.sin(self.omega_0 * layer(h))
        return self.out(h)

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", omega_0={self.omega_0}, hidden={self.sines[0].out_features}, "
                f"num_layers={len(self.sines)}, weight_norm={self.weight_norm}")
