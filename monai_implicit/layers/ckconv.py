"""Continuous-kernel convolutions: CKConv with a SIREN (or MAGNet) kernel network.

CKConv (Romero et al. 2021; used with a SIREN kernel for ultrasound RF micro-bubble localisation in "Continuous
representation of kernels used in convolutional neural networks", Jonker, Sec. 3.1-3.4): the kernel is a kernel
network sampled on ``linspace(-1, 1, k)`` per axis, so the number of parameters does not depend on the kernel size
(65-2111 taps in the thesis).  Large kernels switch to an FFT convolution above the measured crossover
(``method="auto"``, :attr:`ImplicitConv.conv_method <monai_implicit.layers.implicit_conv.ImplicitConv>`).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import torch
from torch import nn

from monai_implicit.kernels.grids import as_kernel_size, kernel_grid
from monai_implicit.kernels.magnet import MAGNetKernel
from monai_implicit.kernels.siren import SirenKernel, check_omega_0
from monai_implicit.layers.fft_conv import CONV_METHODS
from monai_implicit.layers.implicit_conv import ImplicitConv
from monai_implicit.utils import check_option

__all__ = ["CONTINUOUS_KERNELS", "make_kernel_net", "ContinuousKernelConv", "CKConv"]

#: kernel families a continuous-kernel convolution can use, name -> kernel network class
CONTINUOUS_KERNELS: dict[str, type] = {"siren": SirenKernel, "magnet": MAGNetKernel}


def make_kernel_net(
    kernel: str, spatial_dims: int, in_channels: int, out_channels: int, kernel_size: Sequence[int], **options: Any
) -> nn.Module:
    """Build the kernel network of family ``kernel`` (``"siren"`` or ``"magnet"``).

    Args:
        kernel: family name, a key of :data:`CONTINUOUS_KERNELS`.
        spatial_dims, in_channels, out_channels, kernel_size: as the kernel network classes.
        options: keyword options of that class (e.g. ``omega_0`` for SIREN, ``input_scale`` for MAGNet).

    Raises:
        ValueError: unknown family.  TypeError: an option the family does not take.
    """
    cls = check_option(kernel, CONTINUOUS_KERNELS, "kernel")
    try:
        return cls(spatial_dims, in_channels, out_channels, kernel_size, **options)
    except TypeError as err:
        raise TypeError(f"invalid option for the {kernel!r} kernel network ({cls.__name__}): {err}") from err


class ContinuousKernelConv(ImplicitConv):
    """Base of :class:`CKConv` and :class:`~monai_implicit.layers.flexconv.FlexConv`.

    Owns the kernel network (``self.kernel_net``, sampled on the ``"unit"`` grid ``linspace(-1, 1, k)``) and sampling
    at another grid size (:meth:`sample_kernel` with ``kernel_size``; "FlexConv: Continuous Kernel Convolutions with
    Differentiable Kernel Sizes", Eq. 9, Sec. 3.3).  Padding and the choice between direct and FFT convolution
    (``method``, stored as :attr:`conv_method`) are :class:`ImplicitConv`'s.  See :class:`CKConv` for the
    arguments.
    """

    kernel_family = "continuous"

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: Union[int, Sequence[int]],
        kernel: str,
        kernel_options: dict,
        stride: Union[int, Sequence[int]] = 1,
        dilation: Union[int, Sequence[int]] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        method: str = "auto",
        odd_kernel: bool = False,
    ) -> None:
        super().__init__(
            spatial_dims, in_channels, out_channels, kernel_size, stride=stride, dilation=dilation, groups=groups,
            bias=bias, padding_mode=padding_mode, odd_kernel=odd_kernel, conv_method=method,
        )
        self.kernel_family = kernel if isinstance(kernel, str) else str(kernel)
        self.kernel_net = make_kernel_net(
            kernel, spatial_dims, in_channels // groups, out_channels, self.kernel_size, **kernel_options
        )

    def kernel_coords(self, kernel_size: Optional[Union[int, Sequence[int]]] = None) -> torch.Tensor:
        """The ``"unit"`` grid ``(D, *k)`` of ``kernel_size`` (default: the layer's), on the parameters' device."""
        size = self.kernel_size if kernel_size is None else as_kernel_size(kernel_size, self.spatial_dims, odd=False)
        ref = self.kernel_net.out.bias
        return kernel_grid(size, "unit", dtype=ref.dtype, device=ref.device)

    def sample_kernel(self, kernel_size: Optional[Union[int, Sequence[int]]] = None) -> torch.Tensor:
        """The kernel ``(C_out, C_in // groups, *k)`` on ``linspace(-1, 1, k)`` per axis.

        ``kernel_size`` samples the same continuous kernel on another grid, e.g. ``2 (k - 1) + 1`` taps to apply the
        layer to an input upsampled 2x (divide the kernel by ``2 ** D`` to keep the output scale, Eq. 9).
        """
        if kernel_size is None:
            return self.kernel_net()
        return self.kernel_net(self.kernel_coords(kernel_size))

    @property
    def method(self) -> str:
        """``"auto"``, ``"direct"`` or ``"fft"``: the constructor's name of :attr:`ImplicitConv.conv_method`."""
        return self.conv_method

    @method.setter
    def method(self, value: str) -> None:
        self.conv_method = check_option(value, CONV_METHODS, "method")

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", method={self.method!r}" if self.method != "auto" else "")


class CKConv(ContinuousKernelConv):
    """Continuous-kernel convolution with a SIREN kernel network ("Continuous representation of kernels used in
    convolutional neural networks", Jonker, Sec. 3.1-3.3).

    The kernel ``psi(x) = W_3 sin(omega_0 (W_2 sin(omega_0 (W_1 x + b_1)) + b_2)) + b_3`` is sampled on
    ``linspace(-1, 1, k)`` per axis, with the exact SIREN initialisation (see
    :class:`~monai_implicit.kernels.siren.SirenKernel`).  "Same" output size with any ``padding_mode``: the thesis'
    RF network pads by reflection (``padding_mode="reflect"``), which needs ``(k - 1) / 2 < L``.  Above the
    measured crossover (about k = 131 for 1D RF lines on CPU) the convolution runs by FFT.

    Parameters: the kernel network's (``(D + 1) H + (H + 1) H + (H + 1) C_in C_out`` for SIREN with 2 layers) plus
    ``C_out`` for the bias: 1,120 + 33 C_in C_out + C_out in 1D, whatever ``kernel_size``.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: ``C_in``.
        out_channels: ``C_out``.
        kernel_size: int or one per axis; odd or even (even only at stride 1), e.g. 65 or 131 for RF lines.
        omega_0: SIREN frequency factor > 0 (30; the thesis found 10-30 best for long kernels, 8 for k=3).
        hidden: hidden width of the kernel network (32).
        num_layers: sine layers of the SIREN (default 2, the thesis), or hidden linears of a MAGNet (default 3).
        stride: stride (odd kernels only).
        dilation: dilation.
        groups: groups, as ``nn.Conv*d`` (``groups=in_channels`` gives a depthwise long convolution).
        bias: learnable per-output-channel bias.
        padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.
        method: ``"auto"`` (cost model), ``"direct"`` or ``"fft"``.
        kernel: kernel family, ``"siren"`` (default) or ``"magnet"`` (the CKCNN_Gabor ablation of the FlexConv paper).
        kernel_kwargs: further options of the kernel network (e.g. ``{"input_scale": 25.6}`` for MAGNet).
        weight_norm: weight-normalise the SIREN layers after its initialisation (the initial kernel is unchanged).

    Shapes:
        ``(B, C_in, *spatial) -> (B, C_out, *ceil(spatial / stride))``.

    Example::

        conv = CKConv(1, 22, 22, kernel_size=131, omega_0=30.0, padding_mode="reflect")
        y = conv(torch.randn(8, 22, 1024))  # (8, 22, 1024)
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: Union[int, Sequence[int]],
        omega_0: float = 30.0,
        hidden: int = 32,
        num_layers: Optional[int] = None,
        stride: Union[int, Sequence[int]] = 1,
        dilation: Union[int, Sequence[int]] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        method: str = "auto",
        kernel: str = "siren",
        kernel_kwargs: Optional[dict] = None,
        weight_norm: bool = False,
    ) -> None:
        omega_0 = check_omega_0(omega_0)
        options: dict[str, Any] = {"hidden": hidden}
        if num_layers is not None:
            options["num_layers"] = num_layers
        if kernel == "siren":
            options.update(omega_0=omega_0, weight_norm=weight_norm)
        elif weight_norm:
            raise ValueError(f"weight_norm is only available for the 'siren' kernel, got kernel={kernel!r}.")
        options.update(kernel_kwargs or {})
        super().__init__(
            spatial_dims, in_channels, out_channels, kernel_size, kernel, options, stride=stride, dilation=dilation,
            groups=groups, bias=bias, padding_mode=padding_mode, method=method,
        )
        self.omega_0 = omega_0
