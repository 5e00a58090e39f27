"""The one abstraction of the package: a convolution whose kernel is sampled from a kernel network.

``ImplicitConv`` owns everything that is common to hyper-convolutions ("Hyper-Convolutions via Implicit Kernels
for Medical Imaging", Ma, Wang, Dalca, Sabuncu), CKConv/FlexConv ("FlexConv: Continuous Kernel Convolutions with
Differentiable Kernel Sizes", Romero, Bruintjes et al.; "Continuous representation of kernels used in convolutional
neural networks", Jonker) and N-Jet layers ("Resolution learning in deep convolutional networks using scale-space
theory", Pintea, Tomen et al.): argument validation, "same" padding with any ``padding_mode``, the choice between a
direct and an FFT convolution, the bias, input checks, the eval-time kernel cache and the conversion to a plain
``nn.ConvNd`` for deployment.  A family implements :meth:`ImplicitConv.sample_kernel` and, when the kernel's
spatial shape follows a learned parameter, the kernel-size hook :meth:`ImplicitConv.kernel_shape` (N-Jet's
sigma-tied size, FlexConv's cropped mask support).
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Optional, Sequence, Union

import torch
from monai.networks.layers.factories import Conv
from torch import nn

from monai_implicit.kernels.grids import as_kernel_size, check_spatial_dims
from monai_implicit.layers.cache import ParameterCache
from monai_implicit.layers.fft_conv import (
    CONV_FUNCTIONS,
    CONV_METHODS,
    PADDING_MODES,
    choose_method,
    fft_conv,
    pad_for_conv,
    same_padding,
)
from monai_implicit.utils import check_ints, check_option, check_positive_int

__all__ = ["ImplicitConv", "same_padding", "PADDING_MODES"]


class ImplicitConv(nn.Module):
    """Base class: cross-correlation with a kernel produced by :meth:`sample_kernel`.

    The output has the spatial size ``ceil(n / stride)`` of a "same"-padded convolution (the convention of every
    paper implemented here).  In training mode the kernel is re-sampled at every forward so gradients reach the
    kernel network.  In eval mode, when no gradient is needed, the sampled kernel is cached and reused until one of
    the tensors it depends on changes (an optimizer step, ``load_state_dict``, ``.to()``...): the cache key is the
    storage pointer and the autograd version counter of every parameter and buffer except ``bias``.  Code that
    writes to ``param.data`` directly bypasses version counters and must call :meth:`invalidate_cache`.

    Args:
        spatial_dims: number of spatial dimensions, 1, 2 or 3.
        in_channels: number of input channels ``C_in``.
        out_channels: number of output channels ``C_out``.
        kernel_size: kernel extent, an int or one int per axis (anisotropic kernels such as ``(5, 5, 3)``).
        stride: convolution stride (int or per axis).
        dilation: convolution dilation (int or per axis).
        groups: number of groups as in ``nn.Conv*d``; the kernel has shape ``(C_out, C_in // groups, *k)``.
        bias: add a learnable per-output-channel bias.
        padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.
        odd_kernel: require odd kernel sizes (needed for a centred "same" convolution with stride > 1).
        conv_method: ``"direct"`` (``F.conv*d``), ``"fft"`` (:func:`~monai_implicit.layers.fft_conv.fft_conv`) or
            ``"auto"`` (the cheaper by the cost model :func:`~monai_implicit.layers.fft_conv.fft_is_faster`, decided
            per forward from the input and kernel shapes); the result is the same to float rounding.

    Shapes:
        input ``(B, C_in, *spatial)`` with ``len(spatial) == spatial_dims``;
        output ``(B, C_out, *ceil(spatial / stride))``.
    """

    kernel_family: str = "implicit"

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: Union[int, Sequence[int]],
        stride: Union[int, Sequence[int]] = 1,
        dilation: Union[int, Sequence[int]] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        odd_kernel: bool = True,
        conv_method: str = "direct",
    ) -> None:
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            check_positive_int(value, name)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by groups ({groups})."
            )
        self.padding_mode = check_option(padding_mode, PADDING_MODES, "padding_mode")
        self.conv_method = check_option(conv_method, CONV_METHODS, "conv_method")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.groups = groups
        self.kernel_size = as_kernel_size(kernel_size, spatial_dims, odd=odd_kernel)
        self.stride = check_ints(stride, "stride", spatial_dims)
        self.dilation = check_ints(dilation, "dilation", spatial_dims)
        if any(s > 1 for s in self.stride) and any(k % 2 == 0 for k in self.kernel_size):
            raise ValueError(f"stride > 1 needs odd kernel sizes for a centred 'same' padding, got {self.kernel_size}.")
        if bias:
            self.bias: Optional[nn.Parameter] = nn.Parameter(torch.empty(out_channels))
            # the default bias init of nn.Conv*d, so an implicit layer and its plain twin start alike
            fan_in = (in_channels // groups) * math.prod(self.kernel_size)
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)
        else:
            self.register_parameter("bias", None)
        self._kernel_cache = ParameterCache()

    # ------------------------------------------------------------------ kernel
    def sample_kernel(self) -> torch.Tensor:
        """Return the kernel, shape ``(C_out, C_in // groups, *k)``.  Implemented by every subclass."""
        raise NotImplementedError(f"{type(self).__name__} must implement sample_kernel().")

    def kernel_shape(self) -> tuple[int, ...]:
        """The kernel-size hook: the spatial shape of the kernel :meth:`sample_kernel` returns now.

        ``kernel_size`` by default; a family whose kernel size follows a learned parameter overrides it (N-Jet's
        size tied to sigma, FlexConv's crop to the mask support), so the padding can be derived without sampling.
        """
        return self.kernel_size

    def _kernel_tensors(self) -> Iterator[torch.Tensor]:
        for name, p in self.named_parameters():
            if name != "bias":
                yield p
        yield from self.buffers()

    def invalidate_cache(self) -> None:
        """Drop the eval-time kernel cache (only needed after writing to ``param.data`` by hand)."""
        self._kernel_cache.invalidate()

    def train(self, mode: bool = True) -> ImplicitConv:
        self.invalidate_cache()
        return super().train(mode)

    @property
    def weight(self) -> torch.Tensor:
        """The current kernel ``(C_out, C_in // groups, *k)``; cached in eval mode when no gradient is needed."""
        if not ParameterCache.applies(self, self.parameters()):
            return self.sample_kernel()
        return self._kernel_cache.get(self._kernel_tensors(), self.sample_kernel)

    # ------------------------------------------------------------- convolution
    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError unless ``x`` is ``(B, C_in, *spatial)`` with ``spatial_dims`` spatial axes."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__} expects a torch.Tensor, got {type(x).__name__}.")
        if x.ndim != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects input of shape (B, {self.in_channels}, "
                f"{', '.join('*' * self.spatial_dims)}) with {self.spatial_dims} spatial dims, got {tuple(x.shape)}."
            )

    def padding_for(self, kernel_shape: Optional[Sequence[int]] = None) -> list[tuple[int, int]]:
        """(left, right) "same" padding per axis for a kernel of spatial shape ``kernel_shape`` (default: the
        current shape, :meth:`kernel_shape`)."""
        return same_padding(self.kernel_shape() if kernel_shape is None else kernel_shape, self.dilation)

    def pad_input(
        self, x: torch.Tensor, kernel_shape: Optional[Sequence[int]] = None
    ) -> tuple[torch.Tensor, tuple[int, ...]]:
        """``(x', padding)``: ``x`` padded with ``padding_mode`` for a kernel of spatial shape ``kernel_shape``
        (default :meth:`kernel_shape`) and the symmetric zero ``padding`` left to the convolution itself (zeros mode
        pads natively, without a padded copy of ``x``; see :func:`~monai_implicit.layers.fft_conv.pad_for_conv`)."""
        return pad_for_conv(x, self.padding_for(kernel_shape), self.padding_mode)

    def conv_forward(self, x: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Pad and correlate ``x`` with ``weight`` (default :attr:`weight`) and add the bias.

        The direct or the FFT convolution, as :attr:`conv_method` says (``"auto"``: by
        :func:`~monai_implicit.layers.fft_conv.choose_method`: measured once per shape, or the cost model).  A family
        overrides this only for another execution path of the same result (N-Jet's separable path).
        """
        if weight is None:
            weight = self.weight
        x, padding = self.pad_input(x, weight.shape[2:])
        method = choose_method(self.conv_method, x, weight, self.stride, padding, self.dilation, self.groups)
        conv = fft_conv if method == "fft" else CONV_FUNCTIONS[self.spatial_dims]
        return conv(x, weight, self.bias, self.stride, padding, self.dilation, self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, *spatial) -> (B, C_out, *ceil(spatial / stride))``."""
        self.check_input(x)
        return self.conv_forward(x)

    # ------------------------------------------------------------- deployment
    def to_conv(self) -> nn.Module:
        """An ``nn.Conv{1,2,3}d`` holding the current kernel, with identical output (for deployment/TorchScript)."""
        with torch.no_grad():
            weight = self.sample_kernel().detach()
        kernel_shape = tuple(weight.shape[2:])
        pads = self.padding_for(kernel_shape)
        if all(left == right for left, right in pads):
            padding: Any = tuple(left for left, _ in pads)
        else:  # even kernel at stride 1: PyTorch's own "same" puts the extra voxel on the right, as we do
            padding = "same"
        conv = Conv[Conv.CONV, self.spatial_dims](
            self.in_channels,
            self.out_channels,
            kernel_shape,
            stride=self.stride,
            padding=padding,
            dilation=self.dilation,
            groups=self.groups,
            bias=self.bias is not None,
            padding_mode=self.padding_mode,
        )
        conv = conv.to(device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(weight)
            if self.bias is not None:
                conv.bias.copy_(self.bias.detach())
        conv.train(self.training)
        return conv

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if any(v != 1 for v in self.stride):
            s += f", stride={self.stride}"
        if any(v != 1 for v in self.dilation):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        return s + f", kernel={self.kernel_family}"
