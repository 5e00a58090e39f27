"""Voxel spacing of the metrics, in millimetres: from an argument, per case, or from a MetaTensor's affine."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
import torch
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing
from monai.utils import ensure_tuple_rep

from monai_implicit.utils import is_real

__all__ = ["SpacingLike", "resolve_spacing", "spacing_from_meta", "call_spacing"]

SpacingLike = Union[None, float, Sequence[float], Sequence[Sequence[float]], np.ndarray, torch.Tensor]


def _one_spacing(value: Any, spatial_dims: int, where: str) -> tuple[float, ...]:
    if is_real(value):
        values = ensure_tuple_rep(float(value), spatial_dims)
    else:
        values = tuple(np.asarray(value, dtype=np.float64).reshape(-1).tolist())
        if len(values) != spatial_dims:
            raise ValueError(
                f"{where} must have one value per spatial dimension ({spatial_dims}), got {len(values)}: {values}."
            )
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{where} values must be positive and finite (millimetres), got {values}.")
    return values


def resolve_spacing(spacing: SpacingLike, batch_size: int, spatial_dims: int) -> list[tuple[float, ...]]:
    """Expand ``spacing`` to one tuple of ``spatial_dims`` positive floats per case.

    Accepted forms (the same as MONAI's ``prepare_spacing``): ``None`` (1 mm isotropic), one number (isotropic),
    one value per spatial axis (shared by the batch), or a sequence of ``batch_size`` such entries (per case).

    Raises:
        ValueError: wrong number of values, or non-positive / non-finite values.
    """
    if spacing is None:
        return [(1.0,) * spatial_dims] * batch_size
    if is_real(spacing):
        return [_one_spacing(spacing, spatial_dims, "spacing")] * batch_size
    if isinstance(spacing, torch.Tensor):
        spacing = spacing.detach().cpu().numpy()
    if isinstance(spacing, np.ndarray) and spacing.ndim == 2:
        spacing = list(spacing)
    if not isinstance(spacing, (Sequence, np.ndarray)) or isinstance(spacing, str):
        raise TypeError(f"spacing must be None, a number or a sequence of numbers, got {type(spacing).__name__}.")
    if len(spacing) > 0 and not is_real(spacing[0]):
        if len(spacing) != batch_size:
            raise ValueError(
                f"per-case spacing must have one entry per case (batch size {batch_size}), got {len(spacing)}."
            )
        return [_one_spacing(s, spatial_dims, f"spacing[{i}]") for i, s in enumerate(spacing)]
    return [_one_spacing(spacing, spatial_dims, "spacing")] * batch_size


def spacing_from_meta(y: Any, spatial_dims: int) -> Union[None, tuple[float, ...], list[tuple[float, ...]]]:
    """Voxel spacing read from a MetaTensor's affine, or None when ``y`` carries no affine.

    A batched MetaTensor has one affine per case (``(B, 4, 4)``): one spacing per case is returned. An
    unbatched one has a single ``(4, 4)`` affine, whose spacing is shared by the whole batch.
    """
    if not isinstance(y, MetaTensor):
        return None
    affine = y.affine
    if not isinstance(affine, torch.Tensor):
        return None
    affine = affine.detach().cpu().double()
    affines = list(affine) if affine.ndim == 3 else [affine]
    out = []
    for a in affines:
        r = min(spatial_dims, a.shape[0] - 1)
        sp = np.asarray(affine_to_spacing(a, r=r), dtype=np.float64)
        if r < spatial_dims:
            sp = np.concatenate([sp, np.ones(spatial_dims - r)])
        out.append(tuple(float(v) for v in sp))
    return out if affine.ndim == 3 else out[0]


def call_spacing(y: torch.Tensor, given: SpacingLike, default: SpacingLike) -> SpacingLike:
    """The spacing a cumulative metric uses for one call: the call's ``spacing`` keyword (``given``), else the
    metric's ``default``, else the affine of ``y`` when it is a MetaTensor, else None (1 mm)."""
    if given is not None:
        return given
    if default is not None:
        return default
    return spacing_from_meta(y, y.ndim - 2)
