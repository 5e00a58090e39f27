"""The hyper-network of hyper-convolutions ("Hyper-Convolutions via Implicit Kernels for Medical Imaging", Ma, Wang,
Dalca, Sabuncu; Sec. 3.1, Fig. 1).

A small MLP, applied independently at every kernel tap (the paper's 1x1 convolutions over the coordinate grid),
maps the ``D`` coordinates of the tap to the ``C_in * C_out`` kernel weights of that tap:
``D -> 16 -> 16 -> N_L -> C_in * C_out`` with LeakyReLU(0.1) after every hidden layer and a linear last layer.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
from torch import nn

from monai_implicit.kernels.base import KernelNetwork
from monai_implicit.kernels.grids import as_spacing
from monai_implicit.utils import check_ints, check_number, check_option, check_positive_int

__all__ = ["HyperKernel", "HYPER_INITS", "conv_init_variance"]

HYPER_INITS = ("fan_in", "he", "none")


def conv_init_variance(fan_in: int, init: str = "fan_in") -> float:
    """Weight variance of a plain convolution with ``fan_in`` inputs per output.

    ``"fan_in"``: PyTorch's default ``nn.Conv*d`` init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), variance 1/(3 fan_in).
    ``"he"``: He-normal for ReLU networks, variance 2/fan_in.
    """
    if init == "fan_in":
        return 1.0 / (3.0 * fan_in)
    if init == "he":
        return 2.0 / fan_in
    raise ValueError(f"init must be 'fan_in' or 'he' here, got {init!r}.")


class HyperKernel(KernelNetwork):
    """Coordinates -> kernel weights, the hyper-network of one hyper-convolution (hyper-convolution paper, Sec. 3.1).

    Coordinates follow the paper: integer offsets from the kernel centre (``-2..2`` for k=5), so the parameters do
    not depend on the kernel size and the kernel of size 3 is the centre of the kernel of size 5 for the same
    weights.  Optionally the offsets are multiplied by a physical ``spacing`` (mm per voxel).

    Initialisation: He-normal weights and zero biases as in the authors' code, then (unless ``init="none"``) the
    last layer is rescaled once so the initial kernel has the variance of a plain convolution of the same shape
    (``init="fan_in"``: PyTorch's nn.Conv default, 1/(3 fan_in); ``init="he"``: 2/fan_in).  The authors' raw
    initialisation starts 5x (k=3) to 240x (k=9) too large and relies on BatchNorm to absorb it; ``init="none"``
    reproduces it.

    Parameters: ``sum_j (N_j + 1) N_{j+1} + (N_L + 1) C_in C_out`` with ``N = (D, *hidden, N_L)`` - independent of
    the kernel size (388 + 5 C_in C_out for D=2, hidden=(16, 16), N_L=4).

    Args:
        spatial_dims: number of coordinates per tap (1, 2 or 3).
        in_channels: ``C_in`` of the convolution (per group).
        out_channels: ``C_out`` of the convolution.
        kernel_size: kernel extent (odd ints, one per axis or one for all).
        n_l: width ``N_L`` of the last hidden layer (the paper's capacity knob: 2, 4, 8, 24).
        hidden: widths of the hidden layers before ``N_L``; the paper uses ``(16, 16)``.
        negative_slope: slope of the LeakyReLU activations (0.1 in the paper).
        spacing: optional physical voxel size per axis that scales the coordinates.
        init: ``"fan_in"`` (default), ``"he"`` or ``"none"``; see above.

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
        n_l: int = 4,
        hidden: Sequence[int] = (16, 16),
        negative_slope: float = 0.1,
        spacing: Optional[Union[float, Sequence[float]]] = None,
        init: str = "fan_in",
    ) -> None:
        spacing = as_spacing(spacing, spatial_dims)
        super().__init__(spatial_dims, in_channels, out_channels, kernel_size, "offset", odd=True, spacing=spacing)
        check_positive_int(n_l, "n_l")
        hidden = check_ints(tuple(hidden), "hidden")
        self.init = check_option(init, HYPER_INITS, "init")
        self.spacing = spacing
        # an infinite slope passes LeakyReLU silently and turns every kernel weight into +-inf or NaN
        negative_slope = check_number(negative_slope, "negative_slope")
        widths = (spatial_dims, *hidden, n_l)
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(w_in, w_out), nn.LeakyReLU(negative_slope)]
        self.mlp = nn.Sequential(*layers)
        self.out = nn.Linear(n_l, in_channels * out_channels)
        for m in [*self.mlp, self.out]:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, a=negative_slope, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)
        if init != "none":
            fan_in = in_channels * math.prod(self.kernel_size)
            with torch.no_grad():
                rms = self.forward().pow(2).mean().sqrt()
                self.out.weight.mul_(math.sqrt(conv_init_variance(fan_in, init)) / rms.clamp_min(1e-12))

    def tap_values(self, taps: torch.Tensor) -> torch.Tensor:
        """``(K, D) -> (K, C_out * C_in)``: the MLP of LeakyReLU layers, then the linear last layer."""
        return self.out(self.mlp(taps))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", spacing={self.spacing}, init={self.init!r}"
