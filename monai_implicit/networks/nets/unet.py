"""One U-Net skeleton with a pluggable convolution.

The implicit-kernel networks of this package (HyperUNet, NJetUNet, FlexUNet, NeRDUNet) and their plain-convolution
twins are all this skeleton with a different ``conv`` factory (and, for NeRD, a different ``head``), so a
comparison between an implicit network and its baseline changes nothing but the convolution.  The skeleton
validates its own arguments (channels, depth, dropout); the arguments of a convolution factory are validated by the
layer it builds, whose error names the argument.

Topology (the 2D U-Net of "Hyper-Convolutions via Implicit Kernels for Medical Imaging", Ma, Wang, Dalca, Sabuncu,
Sec. 4.1), for ``features=32, depth=3``:

* optional input block ``in_channels -> input_features`` (16);
* encoder level ``i = 0..depth-1``: two blocks ``-> f_i -> f_i`` with ``f_i = features * 2**i``, then max-pool;
* bottleneck: two blocks at ``features * 2**depth`` (256), optionally followed by a non-local block;
* decoder level ``i = depth-1..0``: 2x nearest upsampling (to the skip's exact size, so odd sizes work), one block
  ``f_{i+1} -> f_i``, concatenation with the skip, two blocks ``2 f_i -> f_i -> f_i``;
* head: a 1x1 plain convolution ``f_0 -> out_channels`` returning logits (MONAI convention; use a sigmoid/softmax
  in the loss or post-processing).

Every block is ``conv -> [bias] -> norm -> act -> dropout``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from monai.networks.layers.convutils import same_padding
from monai.networks.layers.factories import Conv, Pool
from monai.networks.layers.utils import get_act_layer, get_dropout_layer, get_norm_layer
from torch import nn

from monai_implicit.kernels.grids import as_kernel_size, check_spatial_dims
from monai_implicit.networks.nets._checks import check_input
from monai_implicit.utils import check_int, check_number, check_option

__all__ = [
    "ConvFactory", "HeadFactory", "conv_factory", "plain_conv", "ConvBlock", "NonLocalBlock", "UpLevel", "ConvUNet",
    "PlainUNet",
]

#: ``(spatial_dims, in_channels, out_channels) -> module`` that keeps the spatial size ("same" padding, stride 1)
ConvFactory = Callable[[int, int, int], nn.Module]
#: ``(spatial_dims, in_channels, out_channels) -> module`` mapping the last decoder features to the logits
HeadFactory = Callable[[int, int, int], nn.Module]

DROPOUT_MODES = ("all", "bottleneck", "none")


def conv_factory(layer: Callable[..., nn.Module], *args: Any, **kwargs: Any) -> ConvFactory:
    """The :data:`ConvFactory` ``(spatial_dims, c_in, c_out) -> layer(spatial_dims, c_in, c_out, *args, **kwargs)``.

    Every implicit convolution of the package takes ``(spatial_dims, in_channels, out_channels, ...)`` first, so one
    factory serves them all; ``args`` and ``kwargs`` are validated by ``layer`` when the network builds it.
    """

    def make(spatial_dims: int, in_channels: int, out_channels: int) -> nn.Module:
        return layer(spatial_dims, in_channels, out_channels, *args, **kwargs)

    return make


def plain_conv(
    kernel_size: Union[int, Sequence[int]] = 3, dilation: int = 1, bias: bool = True, padding_mode: str = "zeros"
) -> ConvFactory:
    """A factory of "same"-padded ``nn.Conv{1,2,3}d`` layers: the plain twin of an implicit convolution."""

    def make(spatial_dims: int, in_channels: int, out_channels: int) -> nn.Module:
        k = as_kernel_size(kernel_size, spatial_dims)
        padding = same_padding(k, dilation)
        return Conv[Conv.CONV, spatial_dims](
            in_channels, out_channels, k, padding=padding, dilation=dilation, bias=bias, padding_mode=padding_mode
        )

    return make


def norm_act(
    spatial_dims: int, channels: int, norm: Union[str, tuple, None], act: Union[str, tuple, None]
) -> dict[str, nn.Module]:
    """``{"norm": ..., "act": ...}``: MONAI's norm and activation layers that follow a convolution (None: left out)."""
    layers: dict[str, nn.Module] = {}
    if norm is not None:
        layers["norm"] = get_norm_layer(norm, spatial_dims=spatial_dims, channels=channels)
    if act is not None:
        layers["act"] = get_act_layer(act)
    return layers


def _conv1x1(spatial_dims: int, in_channels: int, out_channels: int) -> nn.Module:
    return Conv[Conv.CONV, spatial_dims](in_channels, out_channels, kernel_size=1)


class ConvBlock(nn.Sequential):
    """``conv -> norm -> act -> dropout``, the block order of "Hyper-Convolutions via Implicit Kernels for Medical
    Imaging" (Ma, Wang, Dalca, Sabuncu), Sec. 4.1.

    Shapes: ``(B, in_channels, *S) -> (B, out_channels, *S)``.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        conv: ConvFactory,
        norm: Union[str, tuple, None] = "batch",
        act: Union[str, tuple, None] = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        dropout = check_number(dropout, "dropout", low=0.0, high=1.0, high_open=True)  # nn.Dropout accepts NaN
        self.add_module("conv", conv(spatial_dims, in_channels, out_channels))
        for name, layer in norm_act(spatial_dims, out_channels, norm, act).items():
            self.add_module(name, layer)
        if dropout:
            self.add_module("dropout", get_dropout_layer(("dropout", {"p": dropout}), dropout_dim=spatial_dims))


class NonLocalBlock(nn.Module):
    """Residual self-attention over all voxels: the non-local block at the U-Net bottleneck of the non-local
    (Hyper-)UNet ("Hyper-Convolutions via Implicit Kernels for Medical Imaging", Table 1).

    PyTorch's multi-head attention on the flattened voxels with a pre-norm and a residual connection (MONAI's
    SABlock would add an einops dependency for the same computation). Shapes: ``(B, C, *S) -> (B, C, *S)``.
    """

    def __init__(self, channels: int, num_heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels ({channels}) must be divisible by num_heads ({num_heads}).")
        self.norm = nn.LayerNorm(channels)
        self.attn = nn.MultiheadAttention(channels, num_heads, dropout=dropout, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[0], x.shape[1]
        tokens = x.reshape(b, c, -1).transpose(1, 2)  # (B, N, C)
        normed = self.norm(tokens)
        tokens = tokens + self.attn(normed, normed, normed, need_weights=False)[0]
        return tokens.transpose(1, 2).reshape(x.shape)


class UpLevel(nn.Module):
    """One decoder level: upsample to the skip's size, ``up_conv``, concatenate ``[skip, x]``, ``convs``.

    Nearest upsampling to the skip's exact size (not a fixed factor 2) keeps odd input sizes working.  With
    ``coarse_up_conv=True`` the order of the first two steps is swapped: ``up_conv`` runs on the coarse features and
    its output is upsampled, which costs ``2**spatial_dims`` times fewer operations (the role a transposed
    convolution plays in nnU-Net's decoder) for a convolution of the same weights.
    Shapes: ``x (B, C_deep, *S/2)``, ``skip (B, C, *S)`` -> ``(B, C, *S)``.
    """

    def __init__(self, up_conv: nn.Module, convs: nn.Module, coarse_up_conv: bool = False) -> None:
        super().__init__()
        self.up_conv = up_conv
        self.convs = convs
        self.coarse_up_conv = bool(coarse_up_conv)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if self.coarse_up_conv:
            x = F.interpolate(self.up_conv(x), size=skip.shape[2:], mode="nearest")
        else:
            x = self.up_conv(F.interpolate(x, size=skip.shape[2:], mode="nearest"))
        return self.convs(torch.cat([skip, x], dim=1))


class ConvUNet(nn.Module):
    """The U-Net skeleton shared by every network of the package (see the module docstring for the topology).

    Args:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        out_channels: output channels (logits).
        conv: factory ``(spatial_dims, c_in, c_out) -> module`` of the "same"-size convolution used in every block.
        features: channels of the first encoder level ``f_0`` (doubled at every level).
        depth: number of max-pools (3 in the paper).
        input_features: channels of the input block; ``None`` drops the input block (plain paper baseline).
        norm: MONAI norm name/tuple (``"batch"``, ``"instance"``, ...) or None.
        act: MONAI activation name/tuple.
        dropout: dropout probability of the blocks.
        dropout_mode: ``"all"`` (every block, Hyper-UNet), ``"bottleneck"`` (only the bottleneck blocks, plain
            UNet baseline) or ``"none"``.
        non_local: add a :class:`NonLocalBlock` after the bottleneck (non-local (Hyper-)UNet, Table 1 of the
            hyper-convolution paper).
        num_heads: attention heads of the non-local block.
        head: factory of the final classifier ``(spatial_dims, f_0, out_channels) -> module``; a 1x1 convolution by
            default (NeRD heads replace it).
        coarse_up_conv: run each decoder level's first convolution before upsampling instead of after it (see
            :class:`UpLevel`); with ``input_features=None`` this is the light 3D topology of the hyperunet_lits
            bundle (four full-resolution convolutions instead of six).

    Shapes:
        ``(B, in_channels, *S) -> (B, out_channels, *S)`` for any ``S`` with every size ``>= 2**depth`` (odd sizes
        and sizes not divisible by ``2**depth`` included); smaller inputs raise a ValueError naming the size.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        conv: ConvFactory,
        features: int = 32,
        depth: int = 3,
        input_features: Optional[int] = 16,
        norm: Union[str, tuple, None] = "batch",
        act: Union[str, tuple, None] = "relu",
        dropout: float = 0.5,
        dropout_mode: str = "all",
        non_local: bool = False,
        num_heads: int = 4,
        head: Optional[HeadFactory] = None,
        coarse_up_conv: bool = False,
    ) -> None:
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.in_channels = check_int(in_channels, "in_channels")
        self.out_channels = check_int(out_channels, "out_channels")
        self.depth = check_int(depth, "depth", low=0)
        features = check_int(features, "features")
        dropout_mode = check_option(dropout_mode, DROPOUT_MODES, "dropout_mode")
        # checked here too: with dropout_mode="none" no block sees the value
        dropout = check_number(dropout, "dropout", low=0.0, high=1.0, high_open=True)
        # the smallest spatial size that survives `depth` max-pools of size 2 (a plain int for TorchScript)
        self.min_size: int = 2**depth
        self.net_name: str = type(self).__name__
        p_all = dropout if dropout_mode == "all" else 0.0
        p_bottleneck = dropout if dropout_mode in ("all", "bottleneck") else 0.0

        def block(c_in: int, c_out: int, p: float) -> ConvBlock:
            return ConvBlock(spatial_dims, c_in, c_out, conv, norm=norm, act=act, dropout=p)

        self.input_block = block(in_channels, input_features, p_all) if input_features else nn.Identity()
        prev = input_features or in_channels
        widths = [features * 2**i for i in range(depth + 1)]
        self.encoder = nn.ModuleList()
        for f in widths[:-1]:
            self.encoder.append(nn.Sequential(block(prev, f, p_all), block(f, f, p_all)))
            prev = f
        self.pool = Pool[Pool.MAX, spatial_dims](kernel_size=2)
        self.bottleneck = nn.Sequential(
            block(prev, widths[-1], p_bottleneck), block(widths[-1], widths[-1], p_bottleneck)
        )
        self.non_local = NonLocalBlock(widths[-1], num_heads=num_heads) if non_local else nn.Identity()
        self.decoder = nn.ModuleList(
            UpLevel(
                block(widths[i + 1], widths[i], p_all),
                nn.Sequential(block(2 * widths[i], widths[i], p_all), block(widths[i], widths[i], p_all)),
                coarse_up_conv=coarse_up_conv,
            )
            for i in reversed(range(depth))
        )
        self.head = (head or _conv1x1)(spatial_dims, widths[0], out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.net_name, self.in_channels, self.spatial_dims)
        return self.head(self.forward_features(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last decoder features ``(B, f_0, *S)``: the network without its head (heads that need more than
        the features, such as NeRD's positions, call this and then their head).

        Raises:
            ValueError: a spatial size below ``2**depth`` (the bottleneck would be empty; the message names it).
        """
        for size in x.shape[2:]:
            if size < self.min_size:
                raise ValueError(
                    f"{self.net_name} with depth={self.depth} max-pools each spatial axis {self.depth} times and needs "
                    f"every spatial size >= 2**depth = {self.min_size}, got input shape {list(x.shape)}; pad the "
                    f"input (e.g. monai.transforms.SpatialPad) or use a smaller depth."
                )
        x = self.input_block(x)
        skips: list[torch.Tensor] = []
        for level in self.encoder:
            x = level(x)
            skips.append(x)
            x = self.pool(x)
        x = self.non_local(self.bottleneck(x))
        for i, level in enumerate(self.decoder):
            x = level(x, skips[len(skips) - 1 - i])
        return x


class PlainUNet(ConvUNet):
    """The plain-convolution twin: :class:`ConvUNet` with ``nn.Conv*d`` of ``kernel_size``.

    With ``kernel_size=3, input_features=None, dropout_mode="bottleneck"`` this is the paper's UNet baseline
    (2.1M parameters for 1 input and 1 output channel in 2D; "Hyper-Convolutions via Implicit Kernels for Medical
    Imaging", Table 1); with the Hyper-UNet defaults it is
    the Hyper-UNet topology with plain kernels (the twin used by benchmarks and robustness studies).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        features: int = 32,
        depth: int = 3,
        kernel_size: Union[int, Sequence[int]] = 5,
        input_features: Optional[int] = 16,
        norm: Union[str, tuple, None] = "batch",
        act: Union[str, tuple, None] = "relu",
        dropout: float = 0.5,
        dropout_mode: str = "all",
        non_local: bool = False,
        padding_mode: str = "zeros",
        head: Optional[HeadFactory] = None,
        coarse_up_conv: bool = False,
    ) -> None:
        super().__init__(
            spatial_dims, in_channels, out_channels, plain_conv(kernel_size, padding_mode=padding_mode),
            features=features, depth=depth, input_features=input_features, norm=norm, act=act, dropout=dropout,
            dropout_mode=dropout_mode, non_local=non_local, head=head, coarse_up_conv=coarse_up_conv,
        )
