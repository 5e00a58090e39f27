"""FlexUNet: the shared U-Net skeleton with FlexConv layers ("FlexConv: Continuous Kernel Convolutions with
Differentiable Kernel Sizes", Romero, Bruintjes et al., Sec. 3)."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

from monai_implicit.layers.flexconv import FlexConv
from monai_implicit.networks.nets.unet import ConvFactory, ConvUNet, HeadFactory, conv_factory

__all__ = ["flex_conv", "FlexUNet"]


def flex_conv(*args: Any, **kwargs: Any) -> ConvFactory:
    """A :data:`~monai_implicit.networks.nets.unet.ConvFactory` of :class:`FlexConv` layers.

    Arguments as :class:`FlexConv` after ``(spatial_dims, in_channels, out_channels)``: ``kernel_size`` (33),
    ``hidden`` (32), ``num_layers``, ``kernel``, ``kernel_kwargs``, ``mask_init``, ``mask_threshold``,
    ``padding_mode``, ``method``; e.g. ``flex_conv(9, hidden=8)``.
    """
    return conv_factory(FlexConv, *args, **kwargs)


class FlexUNet(ConvUNet):
    """U-Net whose convolutions are FlexConvs: every layer learns its own (anisotropic) kernel size.

    The topology is :class:`~monai_implicit.networks.nets.unet.ConvUNet`'s; each convolution has a MAGNet kernel
    over a maximum extent ``kernel_size`` and a Gaussian mask initialised to a 5-tap support (33-wide grid), cropped
    as it learns (Sec. 3.1 of the FlexConv paper).  Train with ``loss + 0.1 * alias_free_penalty(net)`` to deploy
    at higher resolution (Sec. 3.3), and with :func:`~monai_implicit.layers.flexconv.flexconv_param_groups` for the
    paper's 0.1x mask learning rate.  ``monai_implicit.networks.utils.bake`` turns the trained network into plain
    convolutions of the cropped sizes.

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        out_channels: output channels (logits).
        features: channels of the first encoder level.
        depth: number of max-pools.
        kernel_size: maximum kernel extent (odd int or per axis, e.g. ``(33, 33, 9)`` for thick slices).
        hidden: hidden width of the kernel networks.
        num_layers: hidden linears of each MAGNet (default 3).
        kernel: kernel family, ``"magnet"`` (default) or ``"siren"``.
        kernel_kwargs: options of the kernel network, e.g. ``{"input_scale": 25.6}``.
        mask_init: initial mask width (grid units), see :class:`FlexConv`.
        mask_threshold: crop threshold of the mask (0.1).
        input_features: channels of the input block (None: no input block).
        norm, act, dropout, dropout_mode, non_local: see :class:`ConvUNet` (dropout 0 by default here).
        padding_mode: padding of every FlexConv.
        method: ``"auto"``, ``"direct"`` or ``"fft"`` convolution.
        head: optional final classifier factory (default 1x1 convolution).

    Shapes: ``(B, in_channels, *S) -> (B, out_channels, *S)``.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        features: int = 32,
        depth: int = 3,
        kernel_size: Union[int, Sequence[int]] = 33,
        hidden: int = 32,
        num_layers: Optional[int] = None,
        kernel: str = "magnet",
        kernel_kwargs: Optional[dict] = None,
        mask_init: Optional[float] = None,
        mask_threshold: float = 0.1,
        input_features: Optional[int] = 16,
        norm: Union[str, tuple, None] = "batch",
        act: Union[str, tuple, None] = "relu",
        dropout: float = 0.0,
        dropout_mode: str = "all",
        non_local: bool = False,
        padding_mode: str = "zeros",
        method: str = "auto",
        head: Optional[HeadFactory] = None,
    ) -> None:
        super().__init__(
            spatial_dims, in_channels, out_channels,
            flex_conv(kernel_size, hidden=hidden, num_layers=num_layers, kernel=kernel, kernel_kwargs=kernel_kwargs,
                      mask_init=mask_init, mask_threshold=mask_threshold, padding_mode=padding_mode, method=method),
            features=features, depth=depth, input_features=input_features, norm=norm, act=act, dropout=dropout,
            dropout_mode=dropout_mode, non_local=non_local, head=head,
        )
