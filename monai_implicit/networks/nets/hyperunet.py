"""Hyper-UNet and the flat Hyper-CNN of "Hyper-Convolutions via Implicit Kernels for Medical Imaging" (Ma, Wang,
Dalca, Sabuncu), Sec. 4.1 and Table 1."""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Callable, Optional, Sequence, Union

import torch
from monai.networks.layers.factories import Conv
from torch import nn

from monai_implicit.kernels.grids import as_kernel_size, check_spatial_dims
from monai_implicit.layers.hyperconv import HyperConv
from monai_implicit.networks.nets._checks import check_input
from monai_implicit.networks.nets.unet import ConvBlock, ConvFactory, ConvUNet, HeadFactory, conv_factory, plain_conv

__all__ = ["hyper_conv", "HyperUNet", "FlatCNN", "FlatHyperCNN"]


def hyper_conv(*args: Any, **kwargs: Any) -> ConvFactory:
    """A :data:`~monai_implicit.networks.nets.unet.ConvFactory` of :class:`HyperConv` layers.

    Arguments as :class:`HyperConv` after ``(spatial_dims, in_channels, out_channels)``: ``kernel_size`` (5),
    ``n_l`` (4), ``hidden``, ``padding_mode``, ``spacing``, ``init``; e.g. ``hyper_conv(5, n_l=2)``.
    """
    return conv_factory(HyperConv, *args, **kwargs)


class HyperUNet(ConvUNet):
    """U-Net whose convolutions are hyper-convolutions ("Hyper-Convolutions via Implicit Kernels for Medical
    Imaging", Sec. 4.1).

    The defaults reproduce the published Hyper-UNet: 16-channel input block, three max-pools, 32 initial channels,
    5x5 hyper-convolutions with ``N_L=4``, dropout 0.5 in every block, BatchNorm and ReLU; 1.2M trainable parameters
    for one input and one output channel in 2D (0.73M with ``n_l=2``, 2.2M with ``n_l=8``).  ``non_local=True`` gives
    the non-local Hyper-UNet.  Its plain twin with the same topology is
    ``PlainUNet(spatial_dims, in_channels, out_channels, kernel_size=kernel_size)``.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        out_channels: output channels (logits).
        features: channels of the first encoder level.
        depth: number of max-pools.
        kernel_size: odd int or per-axis sizes (anisotropic, e.g. ``(5, 5, 3)`` for thick-slice CT).
        n_l: hyper-network capacity ``N_L``.
        hidden: hidden widths of the hyper-network before ``N_L``.
        input_features: channels of the input block (None: no input block).
        norm, act, dropout, dropout_mode, non_local: see :class:`ConvUNet`.
        padding_mode: padding of every hyper-convolution.
        spacing: optional physical voxel size; hyper-kernels then see millimetres.
        init: hyper-kernel initialisation, see :class:`~monai_implicit.kernels.hyper.HyperKernel`.
        head: optional final classifier factory (default 1x1 convolution).
        coarse_up_conv: decoder up-convolutions at the coarse level, see :class:`ConvUNet` (light 3D topology).

    Shapes: ``(B, in_channels, *S) -> (B, out_channels, *S)``.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        features: int = 32,
        depth: int = 3,
        kernel_size: Union[int, Sequence[int]] = 5,
        n_l: int = 4,
        hidden: Sequence[int] = (16, 16),
        input_features: Optional[int] = 16,
        norm: Union[str, tuple, None] = "batch",
        act: Union[str, tuple, None] = "relu",
        dropout: float = 0.5,
        dropout_mode: str = "all",
        non_local: bool = False,
        padding_mode: str = "zeros",
        spacing: Optional[Union[float, Sequence[float]]] = None,
        init: str = "fan_in",
        head: Optional[HeadFactory] = None,
        coarse_up_conv: bool = False,
    ) -> None:
        super().__init__(
            spatial_dims, in_channels, out_channels,
            hyper_conv(kernel_size, n_l=n_l, hidden=hidden, padding_mode=padding_mode, spacing=spacing, init=init),
            features=features, depth=depth, input_features=input_features, norm=norm, act=act, dropout=dropout,
            dropout_mode=dropout_mode, non_local=non_local, head=head, coarse_up_conv=coarse_up_conv,
        )


class FlatCNN(nn.Module):
    """A CNN without down-sampling: kernels that grow then shrink (3, 5, 9, 5, 3), the flat network of
    "Hyper-Convolutions via Implicit Kernels for Medical Imaging", Sec. 4.1.

    Every layer works at full resolution: ``conv -> norm -> act`` with ``channels[i]`` outputs, then a 1x1
    convolution to ``out_channels``.  By default ``channels[i]`` is the number of taps of the kernel (9, 25, 81, 25,
    9 in 2D), as in the paper.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        out_channels: output channels (logits).
        kernel_sizes: odd kernel size of every layer.
        channels: output channels of every layer (default: ``k ** spatial_dims``).
        conv: factory taking ``(kernel_size)`` and returning a ConvFactory; plain convolutions by default.
        norm, act, dropout: block options (see :class:`ConvBlock`).

    Shapes: ``(B, in_channels, *S) -> (B, out_channels, *S)``.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_sizes: Sequence[int] = (3, 5, 9, 5, 3),
        channels: Optional[Sequence[int]] = None,
        conv: Callable[..., ConvFactory] = plain_conv,
        norm: Union[str, tuple, None] = "batch",
        act: Union[str, tuple, None] = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        kernel_sizes = [as_kernel_size(k, spatial_dims) for k in kernel_sizes]
        if channels is None:
            channels = [math.prod(k) for k in kernel_sizes]
        if len(channels) != len(kernel_sizes):
            raise ValueError(f"channels needs {len(kernel_sizes)} entries (one per kernel size), got {len(channels)}.")
        self.in_channels = in_channels
        self.net_name: str = type(self).__name__
        layers = []
        prev = in_channels
        for k, c in zip(kernel_sizes, channels):
            layers.append(ConvBlock(spatial_dims, prev, c, conv(k), norm=norm, act=act, dropout=dropout))
            prev = c
        self.layers = nn.Sequential(*layers)
        self.head = Conv[Conv.CONV, spatial_dims](prev, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.net_name, self.in_channels, self.spatial_dims)
        return self.head(self.layers(x))


class FlatHyperCNN(FlatCNN):
    """The flat Hyper-CNN of the hyper-convolution paper (Table 1): :class:`FlatCNN` with hyper-convolutions of
    capacity ``n_l``."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_sizes: Sequence[int] = (3, 5, 9, 5, 3),
        channels: Optional[Sequence[int]] = None,
        n_l: int = 4,
        hidden: Sequence[int] = (16, 16),
        norm: Union[str, tuple, None] = "batch",
        act: Union[str, tuple, None] = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            spatial_dims, in_channels, out_channels, kernel_sizes, channels,
            conv=partial(hyper_conv, n_l=n_l, hidden=hidden), norm=norm, act=act, dropout=dropout,
        )
