"""Input validation shared by the metrics: containers, batch-first layout, label values.

Metrics take batch-first ``(B, C, *spatial)`` inputs as MONAI's do; the batch and channel axes are never guessed, so
a wrongly shaped input is refused with a message that names the expected layout instead of being scored as
something else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import torch
from monai.data import MetaTensor

from monai_implicit.utils import check_int

__all__ = ["as_numpy", "check_batch_first", "check_label_values"]


def as_numpy(x: Any, name: str) -> np.ndarray:
    """``x`` (torch tensor, MetaTensor or numpy array) as a numpy array on the CPU; half precision becomes float32."""
    if isinstance(x, MetaTensor):
        x = x.as_tensor()
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype in (torch.bfloat16, torch.float16, torch.complex32):
            x = x.float()
        return x.cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}.")


def check_batch_first(shape: Sequence[int], spatial_dims: Optional[int] = None, min_spatial_dims: int = 1) -> int:
    """Number of spatial axes of a batch-first ``(B, C, *spatial)`` shape, or a ValueError naming the layout.

    Args:
        shape: the input's shape.
        spatial_dims: the exact number of spatial axes expected (None: any number ``>= min_spatial_dims``).
        min_spatial_dims: the fewest spatial axes accepted when ``spatial_dims`` is None.
    """
    if check_int(spatial_dims, "spatial_dims", allow_none=True) is not None:
        ok, expected = len(shape) == spatial_dims + 2, f"{spatial_dims} spatial dimension(s)"
    else:
        ok, expected = len(shape) >= min_spatial_dims + 2, f"at least {min_spatial_dims} spatial dimension(s)"
    if not ok:
        axes = ", ".join(("B", "C", *("XYZ"[:spatial_dims] if spatial_dims and spatial_dims <= 3 else ["*spatial"])))
        hint = ""
        if len(shape) < (spatial_dims or min_spatial_dims) + 2:
            hint = (
                " -- an unbatched mask? add the batch and channel axes: y[None, None] for one binary mask "
                "(*spatial), y[None] for one case (C, *spatial)"
            )
        raise ValueError(
            f"inputs must be batch-first ({axes}) with {expected}, got shape {tuple(int(s) for s in shape)}{hint}."
        )
    return len(shape) - 2


def check_label_values(values: np.ndarray, num_classes: int, name: str) -> None:
    """Validate the non-zero values of a label map (zero, the background, is always valid)."""
    bad = ~((values >= 1) & (values <= num_classes - 1) & (np.mod(values, 1) == 0))
    if bad.any():
        raise ValueError(
            f"{name} label map values must be integer class indices in [0, {num_classes - 1}], "
            f"found {values[bad][0]!r}."
        )
