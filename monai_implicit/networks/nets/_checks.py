"""Input check shared by the networks of :mod:`monai_implicit.networks.nets`.

Their arguments are checked with :mod:`monai_implicit.utils` (each message names the argument and the value
received).  Arguments that a network only hands on to a layer (kernel
size, capacity, scale, ...) are not checked here: the layer checks them and its error names them.
"""

from __future__ import annotations

import torch

__all__ = ["check_input"]


def check_input(x: torch.Tensor, net_name: str, in_channels: int, spatial_dims: int, axes: str = "*spatial") -> None:
    """Raise a ValueError unless ``x`` is ``(B, in_channels, *S)`` with ``spatial_dims`` spatial axes.

    TorchScript-compatible (baked networks are exported with it): the message uses only the arguments.
    """
    if x.ndim != spatial_dims + 2 or x.shape[1] != in_channels:
        raise ValueError(
            f"{net_name} expects input (B, {in_channels}, {axes}) with {spatial_dims} spatial dims, "
            f"got shape {list(x.shape)}."
        )
