"""FlexConv: a continuous kernel with a learnable anisotropic Gaussian mask that sets the kernel size
("FlexConv: Continuous Kernel Convolutions with Differentiable Kernel Sizes", Romero, Bruintjes et al., Sec. 3.1,
Eq. 1), for 1, 2 and 3 spatial dimensions.

``psi(x) = MAGNet(x) * prod_d exp(-1/2 ((x_d - m_d) / s_d)^2)`` on ``linspace(-1, 1, k_d)`` per axis, where ``k``
is the *maximum* extent.  The kernel is cropped to the taps where the 1D mask exceeds ``mask_threshold`` on every
axis (symmetrically about the centre, so the "same" convolution stays centred): the network learns its kernel size
and pays only for the taps it uses.

Robustness over the authors' code: the mask width ``s_d`` is
``s_min + (s_max - s_min) sigmoid(rho_d)``, hence always in ``[s_min, s_max]`` with ``s_min > 0``: no division by
zero, no NaN whatever the optimiser does (the authors' unconstrained ``s`` goes to 0 and gives NaN); the centre
``m_d = tanh(offset_d)`` stays inside the grid, so the mask cannot drift off the kernel and silence the layer.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Optional, Sequence, Union

import torch
from torch import nn

from monai_implicit.layers.ckconv import ContinuousKernelConv
from monai_implicit.utils import check_number

__all__ = ["FlexConv", "flexconv_param_groups"]


class FlexConv(ContinuousKernelConv):
    """Flexible-size continuous kernel convolution (FlexConv paper, Sec. 3.1-3.2).

    Parameters: ``(L+1)(3HD + H) + L(H^2 + H) + (H+1) C_in C_out + C_out + 2D`` with the MAGNet kernel
    (FlexConv paper, Sec. 3.2 and Appx. A.1), independent of ``kernel_size``.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: ``C_in``.
        out_channels: ``C_out``.
        kernel_size: maximum extent, odd int or one per axis (anisotropic, e.g. ``(33, 33, 9)``); the paper sets it
            to the input size (33 for CIFAR-10).
        hidden: hidden width of the kernel network (32).
        num_layers: hidden linears of the MAGNet (3, i.e. 4 Gabor filters).
        stride: stride.
        dilation: dilation.
        groups: groups as ``nn.Conv*d``.
        bias: learnable per-output-channel bias.
        padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.
        method: ``"auto"`` (direct below the measured crossover, FFT above), ``"direct"`` or ``"fft"``.
        kernel: kernel family, ``"magnet"`` (default) or ``"siren"``.
        kernel_kwargs: options of the kernel network (e.g. ``{"input_scale": 25.6}``, ``{"omega_0": 30.0}``).
        mask_init: initial mask width ``s`` in grid units (the grid spans [-1, 1]); default 0.075 (the published
            value; a 5x5 kernel inside 33x33), raised to ``2 s_min`` if that is larger.
        mask_bounds: ``(s_min, s_max)``; ``s_min=None`` is an eighth of the grid spacing of each axis
            (``1 / (4 (k - 1))``: narrower masks all give a one-tap kernel), ``s_max`` defaults to 1 (a mask that is
            ~0.6 at the grid border).
        mask_threshold: cropping threshold in (0, 1): taps where the 1D mask is <= it are cut (0.1 in the paper).
        crop: crop the kernel to the mask support (True) or always sample the full grid.

    Shapes:
        ``(B, C_in, *spatial) -> (B, C_out, *ceil(spatial / stride))``.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: Union[int, Sequence[int]] = 33,
        hidden: int = 32,
        num_layers: Optional[int] = None,
        stride: Union[int, Sequence[int]] = 1,
        dilation: Union[int, Sequence[int]] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        method: str = "auto",
        kernel: str = "magnet",
        kernel_kwargs: Optional[dict] = None,
        mask_init: Optional[float] = None,
        mask_bounds: tuple[Optional[float], float] = (None, 1.0),
        mask_threshold: float = 0.1,
        crop: bool = True,
    ) -> None:
        check_number(mask_threshold, "mask_threshold", 0.0, 1.0, low_open=True, high_open=True)
        options: dict[str, Any] = {"hidden": hidden}
        if num_layers is not None:
            options["num_layers"] = num_layers
        # checked before it is turned into the MAGNet option below, so the error names mask_init
        requested_init = 0.075 if mask_init is None else check_number(mask_init, "mask_init", low=0.0, low_open=True)
        if kernel == "magnet":
            # the authors centre the Gabor envelopes inside ~1.667 mask widths (their FlexConv.__init__)
            options["init_spatial_value"] = min(1.0, 1.667 * float(requested_init))
        options.update(kernel_kwargs or {})
        super().__init__(
            spatial_dims, in_channels, out_channels, kernel_size, kernel, options, stride=stride, dilation=dilation,
            groups=groups, bias=bias, padding_mode=padding_mode, method=method, odd_kernel=True,
        )
        if not isinstance(mask_bounds, Sequence) or len(mask_bounds) != 2:
            raise ValueError(f"mask_bounds must be (s_min or None, s_max), got {mask_bounds!r}.")
        spacing = [2.0 / (k - 1) if k > 1 else 2.0 for k in self.kernel_size]
        lo = [s / 8.0 for s in spacing] if mask_bounds[0] is None else [float(mask_bounds[0])] * spatial_dims
        hi = [float(mask_bounds[1])] * spatial_dims
        if any(not (0.0 < a < b) or not math.isfinite(b) for a, b in zip(lo, hi)):
            raise ValueError(f"mask_bounds must satisfy 0 < s_min < s_max < inf, got s_min={lo}, s_max={hi}.")
        init = [float(requested_init)] * spatial_dims if mask_init is not None else [
            max(0.075, 2.0 * a) for a in lo]
        if any(not (a < s < b) for a, s, b in zip(lo, init, hi)):
            raise ValueError(f"mask_init must lie strictly inside (s_min, s_max) = ({lo}, {hi}), got {init}.")
        self.register_buffer("mask_sigma_min", torch.tensor(lo), persistent=True)
        self.register_buffer("mask_sigma_max", torch.tensor(hi), persistent=True)
        frac = torch.tensor([(s - a) / (b - a) for a, s, b in zip(lo, init, hi)])
        self.mask_rho = nn.Parameter(torch.log(frac) - torch.log1p(-frac))  # logit: sigma(rho) = init
        self.mask_offset = nn.Parameter(torch.zeros(spatial_dims))  # mask centre = tanh(offset), inside the grid
        self.mask_threshold = float(mask_threshold)
        self.crop = bool(crop)
        # the crop radius, in units of s, beyond which exp(-r^2 / 2) <= threshold
        self._crop_factor = math.sqrt(-2.0 * math.log(self.mask_threshold))

    # ------------------------------------------------------------------ mask
    @property
    def mask_mean(self) -> torch.Tensor:
        """Mask centres ``m`` ``(D,)`` = ``tanh(mask_offset)``, always inside the grid ``(-1, 1)``."""
        return torch.tanh(self.mask_offset)

    @property
    def mask_sigma(self) -> torch.Tensor:
        """Mask widths ``s`` ``(D,)``, always in ``[s_min, s_max]``."""
        return self.mask_sigma_min + (self.mask_sigma_max - self.mask_sigma_min) * torch.sigmoid(self.mask_rho)

    def mask_parameters(self) -> Iterator[nn.Parameter]:
        """The mask parameters (the paper trains them at 0.1x the learning rate; see :func:`flexconv_param_groups`)."""
        yield self.mask_offset
        yield self.mask_rho

    def mask(self, coords: torch.Tensor) -> torch.Tensor:
        """The Gaussian mask ``prod_d exp(-1/2 ((x_d - m_d) / s_d)^2)`` on ``coords`` ``(D, *grid)`` -> ``(*grid)``."""
        shape = (self.spatial_dims,) + (1,) * (coords.ndim - 1)
        z = (coords - self.mask_mean.view(shape)) / self.mask_sigma.view(shape)
        return torch.exp(-0.5 * (z * z).sum(0))

    def crop_slices(self, kernel_size: Optional[Sequence[int]] = None) -> tuple[slice, ...]:
        """Per-axis slices of the grid of ``kernel_size`` (default: the maximum extent) kept by the crop.

        Axis ``d`` keeps the taps ``|x| < max(|m_d - c s_d|, |m_d + c s_d|)`` with ``c = sqrt(-2 ln threshold)``: a
        window centred on the kernel centre that contains every tap where the 1D mask exceeds the threshold.
        """
        size = self.kernel_size if kernel_size is None else tuple(kernel_size)
        if not self.crop:
            return tuple(slice(0, k) for k in size)
        with torch.no_grad():
            m = self.mask_mean.detach().double().cpu()
            s = self.mask_sigma.detach().double().cpu()
            radius = torch.maximum((m - self._crop_factor * s).abs(), (m + self._crop_factor * s).abs())
        slices = []
        for k, r in zip(size, radius.tolist()):
            axis = torch.linspace(-1.0, 1.0, k, dtype=torch.float64) if k > 1 else torch.zeros(1, dtype=torch.float64)
            keep = max(int((axis.abs() < r).sum()), 1)  # odd on an odd grid (symmetric); the centre tap at least
            start = (k - keep) // 2
            slices.append(slice(start, start + keep))
        return tuple(slices)

    def kernel_shape(self) -> tuple[int, ...]:
        """The kernel-size hook: the cropped extent of the kernel, which follows the learned mask width."""
        return tuple(s.stop - s.start for s in self.crop_slices())

    def sample_kernel(self, kernel_size: Optional[Union[int, Sequence[int]]] = None) -> torch.Tensor:
        """The masked, cropped kernel ``(C_out, C_in // groups, *k_crop)``.

        ``kernel_size`` samples on the grid of another maximum extent (e.g. ``2 (k - 1) + 1`` for an input upsampled
        2x, Eq. 9); the same crop radius applies.
        """
        coords = self.kernel_coords(kernel_size)
        coords = coords[(slice(None), *self.crop_slices(coords.shape[1:]))]
        return self.kernel_net(coords) * self.mask(coords)

    def extra_repr(self) -> str:
        sigma = [round(v, 4) for v in self.mask_sigma.detach().tolist()]
        return super().extra_repr() + f", mask_sigma={sigma}, cropped={self.kernel_shape()}"


def flexconv_param_groups(net: nn.Module, lr: float, mask_lr_factor: float = 0.1) -> list[dict]:
    """Optimizer parameter groups with the FlexConv masks at ``mask_lr_factor * lr`` (FlexConv paper, Appx. D).

    Returns:
        ``[{"params": other, "lr": lr}, {"params": masks, "lr": mask_lr_factor * lr}]`` for ``torch.optim``.
    """
    masks = [p for m in net.modules() if isinstance(m, FlexConv) for p in m.mask_parameters()]
    ids = {id(p) for p in masks}
    others = [p for p in net.parameters() if id(p) not in ids]
    return [{"params": others, "lr": lr}, {"params": masks, "lr": mask_lr_factor * lr}]
