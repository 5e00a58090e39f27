"""CKCNN: the 1D continuous-kernel network for RF micro-bubble localisation of "Continuous representation of kernels
used in convolutional neural networks" (Jonker, BSc thesis), Sec. 3.3, Fig. 4."""

from __future__ import annotations

from typing import Union

import torch
from monai.networks.layers.factories import Conv
from torch import nn

from monai_implicit.layers.ckconv import CKConv
from monai_implicit.networks.nets._checks import check_input
from monai_implicit.networks.nets.unet import norm_act
from monai_implicit.utils import check_int

__all__ = ["CKCNN"]


class CKCNN(nn.Module):
    """``num_blocks x [CKConv -> norm -> act]`` then a 1x1 convolution to ``out_channels`` (the thesis' Fig. 4).

    The thesis network for single-channel ultrasound RF lines: SIREN kernels (``omega_0=30``, 32 hidden units),
    22 hidden channels, kernel sizes 65 or 131 working best, reflection padding so the output has the input's length.
    The thesis pads once at the input and then uses valid convolutions; here every CKConv pads by reflection itself,
    which gives the same output length and receptive field for any input length (the input must be longer than
    ``(kernel_size - 1) / 2``).  Long kernels run by FFT automatically (see :class:`CKConv`).

    Args:
        spatial_dims: 1 for RF lines (2 and 3 work too: the construction is dimension-agnostic).
        in_channels: input channels (1 for a single-channel RF line).
        out_channels: output channels (1: a per-sample bubble logit).
        hidden_channels: channels of every CKConv (22 in the thesis).
        kernel_size: kernel extent of every CKConv (65 or 131 in the thesis).
        num_blocks: number of CKConv blocks (4).
        omega_0: SIREN frequency factor.
        kernel_hidden: hidden width of the SIREN kernel networks (32).
        norm: MONAI norm name (BatchNorm in the thesis) or None.
        act: MONAI activation name.
        padding_mode: padding of the CKConvs (``"reflect"`` in the thesis).
        method: convolution path of the CKConvs: ``"auto"``, ``"direct"`` or ``"fft"``.

    Shapes: ``(B, in_channels, *L) -> (B, out_channels, *L)`` (logits).
    """

    def __init__(
        self,
        spatial_dims: int = 1,
        in_channels: int = 1,
        out_channels: int = 1,
        hidden_channels: int = 22,
        kernel_size: int = 65,
        num_blocks: int = 4,
        omega_0: float = 30.0,
        kernel_hidden: int = 32,
        norm: Union[str, tuple, None] = "batch",
        act: Union[str, tuple, None] = "relu",
        padding_mode: str = "reflect",
        method: str = "auto",
    ) -> None:
        super().__init__()
        check_int(num_blocks, "num_blocks")
        check_int(hidden_channels, "hidden_channels")
        self.in_channels = in_channels
        self.spatial_dims = spatial_dims
        self.net_name: str = type(self).__name__
        blocks = []
        prev = in_channels
        for _ in range(num_blocks):
            conv = CKConv(
                spatial_dims, prev, hidden_channels, kernel_size, omega_0=omega_0, hidden=kernel_hidden,
                padding_mode=padding_mode, method=method,
            )
            # an unnamed Sequential (keys blocks.i.0, .1, .2), as in the published checkpoints
            blocks.append(nn.Sequential(conv, *norm_act(spatial_dims, hidden_channels, norm, act).values()))
            prev = hidden_channels
        self.blocks = nn.Sequential(*blocks)
        self.head = Conv[Conv.CONV, spatial_dims](hidden_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.net_name, self.in_channels, self.spatial_dims, axes="*L")
        return self.head(self.blocks(x))
