"""The one abstraction of the package: a convolution whose kernel is sampled from a kernel network.

``ImplicitConv`` owns everything that is common to hyper-convolutions (seeds/000), CKConv/FlexConv
(seeds/002, seeds/004) and N-Jet layers (seeds/003): argument validation, "same" padding with any
``padding_mode``, the bias, input checks, the eval-time kernel cache and the conversion to a plain
``nn.ConvNd`` for deployment.  A subclass only implements :meth:`ImplicitConv.sample_kernel` (and may override
:meth:`ImplicitConv.conv_forward`, e.g. to use an FFT convolution or a separable path).
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from monai.networks.layers.factories import Conv
from monai.utils import ensure_tuple_rep
from torch import nn

from monai_implicit.kernels.grids import as_kernel_size, check_spatial_dims

__all__ = ["ImplicitConv", "same_padding", "PADDING_MODES"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_CONV_FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def same_padding(kernel_size: Sequence[int], dilation: Sequence[int]) -> list[tuple[int, int]]:
    """(left, right) padding per axis that keeps the spatial size at stride 1, as ``padding="same"`` in PyTorch.

    For even kernels the extra voxel goes to the right, exactly like ``torch.nn.Conv*d(padding="same")``.
    """
    pads = []
    for k, d in zip(kernel_size, dilation):
        total = d * (k - 1)
        pads.append((total // 2, total - total // 2))
    return pads


def _positive_ints(value: Union[int, Sequence[int]], spatial_dims: int, name: str) -> tuple[int, ...]:
    values = ensure_tuple_rep(value, spatial_dims)
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise ValueError(f"{name} must be positive integers (one or {spatial_dims}), got {value!r}.")
    return tuple(int(v) for v in values)


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
    ) -> None:
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by groups ({groups})."
            )
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}.")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.groups = groups
        self.kernel_size = as_kernel_size(kernel_size, spatial_dims, odd=odd_kernel)
        self.stride = _positive_ints(stride, spatial_dims, "stride")
        self.dilation = _positive_ints(dilation, spatial_dims, "dilation")
        if any(s > 1 for s in self.stride) and any(k % 2 == 0 for k in self.kernel_size):
            raise ValueError(f"stride > 1 needs odd kernel sizes for a centred 'same' padding, got {self.kernel_size}.")
        self.padding_mode = padding_mode
        if bias:
            self.bias: Optional[nn.Parameter] = nn.Parameter(torch.empty(out_channels))
            # the default bias init of nn.Conv*d, so an implicit layer and its plain twin start alike
            fan_in = (in_channels // groups) * math.prod(self.kernel_size)
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)
        else:
            self.register_parameter("bias", None)
        self._cached_weight: Optional[torch.Tensor] = None
        self._cached_key: Optional[tuple] = None

    # ------------------------------------------------------------------ kernel
    def sample_kernel(self) -> torch.Tensor:
        """Return the kernel, shape ``(C_out, C_in // groups, *k)``.  Implemented by every subclass."""
        raise NotImplementedError(f"{type(self).__name__} must implement sample_kernel().")

    def _kernel_tensors(self) -> Iterator[torch.Tensor]:
        for name, p in self.named_parameters():
            if name != "bias":
                yield p
        yield from self.buffers()

    def _cache_key(self) -> tuple:
        return tuple((t.data_ptr(), t._version, t.dtype, t.device, tuple(t.shape)) for t in self._kernel_tensors())

    def invalidate_cache(self) -> None:
        """Drop the eval-time kernel cache (only needed after writing to ``param.data`` by hand)."""
        self._cached_weight = None
        self._cached_key = None

    def train(self, mode: bool = True) -> ImplicitConv:
        self.invalidate_cache()
        return super().train(mode)

    @property
    def weight(self) -> torch.Tensor:
        """The current kernel ``(C_out, C_in // groups, *k)``; cached in eval mode when no gradient is needed."""
        needs_grad = torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())
        if self.training or needs_grad:
            return self.sample_kernel()
        key = self._cache_key()
        if self._cached_weight is None or key != self._cached_key:
            with torch.no_grad():
                self._cached_weight = self.sample_kernel()
            self._cached_key = key
        return self._cached_weight

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

    def padding_for(self, kernel_shape: Sequence[int]) -> list[tuple[int, int]]:
        """(left, right) padding per axis for a kernel of spatial shape ``kernel_shape``."""
        return same_padding(kernel_shape, self.dilation)

    def conv_forward(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Pad and correlate ``x`` with ``weight`` (and add the bias).  Override for FFT or separable paths."""
        pads = self.padding_for(weight.shape[2:])
        symmetric = all(left == right for left, right in pads)
        if self.padding_mode == "zeros" and symmetric:
            padding: Any = tuple(left for left, _ in pads)
        else:
            flat = [p for left_right in reversed(pads) for p in left_right]
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            x = F.pad(x, flat, mode=mode)
            padding = 0
        return _CONV_FN[self.spatial_dims](x, weight, self.bias, self.stride, padding, self.dilation, self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, *spatial) -> (B, C_out, *ceil(spatial / stride))``."""
        self.check_input(x)
        return self.conv_forward(x, self.weight)

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
