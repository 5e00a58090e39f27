"""Argument and input checks shared by the networks of :mod:`monai_implicit.networks.nets`.

Each message names the argument and the value received.  Arguments that a network only hands on to a layer (kernel
size, capacity, scale, ...) are not checked here: the layer checks them and its error names them.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import torch
from monai.utils import look_up_option

__all__ = ["check_int", "check_option", "check_input"]


def check_int(value: Any, name: str, low: int = 1) -> int:
    """``value`` if it is an int ``>= low`` (``bool`` refused), else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        kind = "a positive integer" if low == 1 else "a non-negative integer" if low == 0 else f"an integer >= {low}"
        raise ValueError(f"{name} must be {kind}, got {value!r}.")
    return value


def check_option(value: Any, name: str, supported: Collection) -> Any:
    """MONAI's ``look_up_option`` with a message that names the argument (its spelling hint is chained)."""
    try:
        return look_up_option(value, supported)
    except ValueError as e:
        raise ValueError(f"{name} must be one of {tuple(supported)}, got {value!r}.") from e


def check_input(x: torch.Tensor, net_name: str, in_channels: int, spatial_dims: int, axes: str = "*spatial") -> None:
    """Raise a ValueError unless ``x`` is ``(B, in_channels, *S)`` with ``spatial_dims`` spatial axes.

    TorchScript-compatible (baked networks are exported with it): the message uses only the arguments.
    """
    if x.ndim != spatial_dims + 2 or x.shape[1] != in_channels:
        raise ValueError(
            f"{net_name} expects input (B, {in_channels}, {axes}) with {spatial_dims} spatial dims, "
            f"got shape {list(x.shape)}."
        )
