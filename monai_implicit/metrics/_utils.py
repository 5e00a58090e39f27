"""Input handling shared by the metrics: batch-first tensors -> per-case, per-class foreground indices.

All metrics in this package work on *sorted flat foreground indices* of each binary mask instead of dense
boolean volumes: one pass over the input finds the foreground, and everything after that (surface test,
bounding box, contingency tables) costs time proportional to the number of foreground voxels. On large,
sparsely labelled volumes (lesions in a 512x512x300 scan) this is where the speed of the metrics comes from.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
import torch
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing
from monai.metrics import CumulativeIterationMetric
from monai.metrics.utils import do_metric_reduction
from monai.utils import MetricReduction

__all__ = [
    "CountMetric",
    "CaseMasks",
    "foreground_index",
    "iter_case_masks",
    "resolve_spacing",
    "spacing_from_meta",
    "check_choice",
    "check_batch_first",
]

SpacingLike = Union[None, float, Sequence[float], Sequence[Sequence[float]], np.ndarray, torch.Tensor]


def check_choice(value: Any, choices: Sequence[str], name: str) -> str:
    """Return ``value`` if it is one of ``choices`` else raise a ValueError naming both."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}.")
    return value


def _to_numpy(x: Any, name: str) -> np.ndarray:
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


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _one_spacing(value: Any, spatial_dims: int, where: str) -> tuple[float, ...]:
    if _is_number(value):
        values = (float(value),) * spatial_dims
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
    if _is_number(spacing):
        return [_one_spacing(spacing, spatial_dims, "spacing")] * batch_size
    if isinstance(spacing, torch.Tensor):
        spacing = spacing.detach().cpu().numpy()
    if isinstance(spacing, np.ndarray) and spacing.ndim == 2:
        spacing = list(spacing)
    if not isinstance(spacing, (Sequence, np.ndarray)) or isinstance(spacing, str):
        raise TypeError(f"spacing must be None, a number or a sequence of numbers, got {type(spacing).__name__}.")
    if len(spacing) > 0 and not _is_number(spacing[0]):
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


@dataclass
class CaseMasks:
    """Foreground of one (case, class) pair as sorted flat indices into ``shape`` (C order).

    Attributes:
        batch: case index in the batch.
        channel: output channel (class) index, after the background was dropped if requested.
        shape: spatial shape of the volume.
        pred: sorted flat indices of predicted foreground voxels.
        gt: sorted flat indices of ground-truth foreground voxels.
        pred_volume / gt_volume: the flattened arrays the indices point into, used for O(1) neighbour lookups.
        pred_value / gt_value: the value a voxel must have to be foreground (``None`` = any non-zero value).
    """

    batch: int
    channel: int
    shape: tuple[int, ...]
    pred: np.ndarray
    gt: np.ndarray
    pred_volume: np.ndarray
    gt_volume: np.ndarray
    pred_value: Optional[int]
    gt_value: Optional[int]

    def member(self, which: str, flat_index: np.ndarray) -> np.ndarray:
        """Whether each voxel at ``flat_index`` is foreground in ``which`` ("pred" or "gt")."""
        volume = self.pred_volume if which == "pred" else self.gt_volume
        value = self.pred_value if which == "pred" else self.gt_value
        v = volume[flat_index]
        return v != 0 if value is None else v == value


_BLOCK = 1024


def foreground_index(flat: np.ndarray) -> np.ndarray:
    """Sorted indices of the non-zero entries of a contiguous 1D array, like ``np.flatnonzero`` but faster on
    sparse data.

    ``np.flatnonzero`` walks every element with a branch per element; here a bitwise-OR reduction over blocks of
    raw bytes (a memory-bandwidth-bound pass) finds the few blocks holding foreground and only those are
    searched. On a 512x512x300 float volume with lesions this is about 15x faster. Blocks whose bytes are
    non-zero only because of ``-0.0`` are searched and correctly yield nothing.
    """
    n_full = flat.size // _BLOCK
    if n_full == 0 or flat.dtype.itemsize not in (1, 2, 4, 8):
        return np.flatnonzero(flat)
    head = flat[: n_full * _BLOCK]
    words = head.view(np.uint64).reshape(n_full, -1)
    occupied = np.flatnonzero(np.bitwise_or.reduce(words, axis=1))
    rows, cols = np.nonzero(head.reshape(n_full, _BLOCK)[occupied])
    idx = occupied[rows] * _BLOCK + cols
    tail = np.flatnonzero(flat[n_full * _BLOCK:])
    if tail.size:
        idx = np.concatenate([idx, tail + n_full * _BLOCK])
    return idx.astype(np.intp, copy=False)


def _binary_foreground(flat: np.ndarray, name: str) -> np.ndarray:
    idx = foreground_index(flat)
    if flat.dtype != np.bool_ and idx.size:
        values = flat[idx]
        if not np.all(values == 1):
            bad = values[values != 1][0]
            raise ValueError(
                f"{name} must be binary (0/1 values, or bool) per channel, found the value {bad!r}; "
                "threshold probabilities first, e.g. with monai.transforms.AsDiscrete(threshold=0.5)."
            )
    return idx


def _check_label_values(values: np.ndarray, num_classes: int, name: str) -> None:
    """Validate the non-zero values of a label map (zero, the background, is always valid)."""
    bad = ~((values >= 1) & (values <= num_classes - 1) & (np.mod(values, 1) == 0))
    if bad.any():
        raise ValueError(
            f"{name} label map values must be integer class indices in [0, {num_classes - 1}], "
            f"found {values[bad][0]!r}."
        )


def iter_case_masks(
    y_pred: Any,
    y: Any,
    include_background: bool = False,
    num_classes: Optional[int] = None,
    min_spatial_dims: int = 1,
    spatial_dims: Optional[int] = None,
) -> tuple[tuple[int, int], Iterator[CaseMasks]]:
    """Validate a (prediction, ground truth) pair and iterate over the foreground of every (case, class).

    Inputs are batch-first, ``(B, C, *spatial)``, torch tensors (MetaTensor included) or numpy arrays, with exactly
    ``spatial_dims`` spatial axes when it is given, else at least ``min_spatial_dims``.  The batch and channel axes
    are never guessed: an unbatched ``(X, Y, Z)`` mask has the same number of axes as a batch of 1D masks
    ``(B, C, Z)``, so it is refused (by ``min_spatial_dims=2`` or ``spatial_dims=3``) rather than scored as one.

    * ``C == 1`` and ``num_classes is None``: one binary mask per case (values 0/1 or bool). This single channel is
      the foreground, so ``include_background`` does not apply to it.
    * ``C > 1``: one-hot masks, one binary channel per class; channel 0 is dropped unless ``include_background``.
    * ``C == 1`` and ``num_classes`` given: integer label maps with values in ``[0, num_classes)``; class 0 is
      dropped unless ``include_background``.

    Returns:
        ``((B, n_out_classes), iterator)``; the iterator yields :class:`CaseMasks` in (case, class) order.

    Raises:
        TypeError / ValueError: wrong types, shape mismatch, too few dimensions, non-binary one-hot values,
            label values out of range.
    """
    yp = _to_numpy(y_pred, "y_pred")
    yt = _to_numpy(y, "y")
    if yp.shape != yt.shape:
        raise ValueError(f"y_pred and y must have the same shape, got {tuple(yp.shape)} and {tuple(yt.shape)}.")
    check_batch_first(yp.shape, spatial_dims, min_spatial_dims)
    for arr, name in ((yp, "y_pred"), (yt, "y")):
        if not (arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.number)) or np.iscomplexobj(arr):
            raise TypeError(f"{name} must hold real numbers or bools, got dtype {arr.dtype}.")
    batch, channels = int(yp.shape[0]), int(yp.shape[1])
    shape = tuple(int(s) for s in yp.shape[2:])
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2 (background included), got {num_classes!r}.")
        if channels != 1:
            raise ValueError(
                f"num_classes is for label maps with one channel, got {channels} channels; one-hot inputs "
                "need no num_classes."
            )
        classes = list(range(0 if include_background else 1, int(num_classes)))
    elif channels == 1:
        classes = [0]
    else:
        classes = list(range(0 if include_background else 1, channels))

    def generate() -> Iterator[CaseMasks]:
        for b in range(batch):
            if num_classes is not None:
                fp = _as_label_map(yp[b, 0])
                ft = _as_label_map(yt[b, 0])
                fg_p, fg_t = foreground_index(fp), foreground_index(ft)
                lab_p, lab_t = fp[fg_p], ft[fg_t]
                _check_label_values(lab_p, int(num_classes), "y_pred")
                _check_label_values(lab_t, int(num_classes), "y")
                for out_c, label in enumerate(classes):
                    # class 0 is the (dense) background: found directly; other classes are split from the
                    # foreground found in one sparse pass
                    ip = np.flatnonzero(fp == 0) if label == 0 else fg_p[lab_p == label]
                    it = np.flatnonzero(ft == 0) if label == 0 else fg_t[lab_t == label]
                    yield CaseMasks(b, out_c, shape, ip, it, fp, ft, label, label)
            else:
                for out_c, c in enumerate(classes):
                    fp = np.ascontiguousarray(yp[b, c]).reshape(-1)
                    ft = np.ascontiguousarray(yt[b, c]).reshape(-1)
                    ip = _binary_foreground(fp, "y_pred")
                    it = _binary_foreground(ft, "y")
                    yield CaseMasks(b, out_c, shape, ip, it, fp, ft, None, None)

    return (batch, len(classes)), generate()



def check_batch_first(shape: Sequence[int], spatial_dims: Optional[int] = None, min_spatial_dims: int = 1) -> int:
    """Number of spatial axes of a batch-first ``(B, C, *spatial)`` shape, or a ValueError naming the layout.

    Args:
        shape: the input's shape.
        spatial_dims: the exact number of spatial axes expected (None: any number ``>= min_spatial_dims``).
        min_spatial_dims: the fewest spatial axes accepted when ``spatial_dims`` is None.
    """
    if spatial_dims is not None:
        if isinstance(spatial_dims, bool) or not isinstance(spatial_dims, (int, np.integer)) or spatial_dims < 1:
            raise ValueError(f"spatial_dims must be a positive int or None, got {spatial_dims!r}.")
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


def _as_label_map(arr: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(arr).reshape(-1)
    return flat.view(np.uint8) if flat.dtype == np.bool_ else flat


class CountMetric(CumulativeIterationMetric):
    """Cumulative metric whose buffer holds per-case *counts* (``(n_cases, n_classes, n_counts)``) from which
    named ratios are derived, like MONAI's ``ConfusionMatrixMetric``.

    Subclasses define ``COUNT_NAMES``, ``METRIC_NAMES`` and ``from_counts(counts, empty) -> dict``.

    ``aggregate()`` either averages the per-case ratios over non-NaN cases (``pooled=False``, the usual
    "mean over cases") or reduces the counts first and derives the ratios from the totals (``pooled=True``,
    e.g. the fraction of all lesions of a data set that were detected).
    """

    COUNT_NAMES: tuple[str, ...] = ()
    METRIC_NAMES: tuple[str, ...] = ()

    def __init__(
        self,
        metric_name: Union[str, Sequence[str]],
        empty: str,
        pooled: bool,
        reduction: Union[MetricReduction, str],
        get_not_nans: bool,
    ) -> None:
        super().__init__()
        names = (metric_name,) if isinstance(metric_name, str) else tuple(metric_name)
        if not names:
            raise ValueError("metric_name must name at least one metric.")
        for n in names:
            check_choice(n, self.METRIC_NAMES + self.COUNT_NAMES, "metric_name")
        self.metric_name = metric_name
        self._names = names
        self.empty = check_choice(empty, ("wmh", "nan"), "empty")
        self.pooled = pooled
        self.reduction = reduction
        self.get_not_nans = get_not_nans

    @classmethod
    def from_counts(cls, counts: torch.Tensor, empty: str) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{cls.__name__} must implement from_counts().")

    def _counts(self) -> torch.Tensor:
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError(f"the data to aggregate must be a PyTorch Tensor, got {type(data).__name__}.")
        return data

    def get_details(self) -> dict[str, torch.Tensor]:
        """Every count and ratio per case: ``{name: (n_cases, n_classes)}``."""
        return self.from_counts(self._counts(), self.empty)

    def aggregate(  # type: ignore[override]
        self, reduction: Union[MetricReduction, str, None] = None, pooled: Optional[bool] = None
    ) -> Any:
        """Reduce over cases with a MONAI ``MetricReduction`` (default: the constructor's, ``"mean"``).

        Returns one tensor (or ``(tensor, not_nans)`` with ``get_not_nans``) when ``metric_name`` is a string,
        otherwise a list in the order of ``metric_name``.
        """
        counts = self._counts()
        red = reduction or self.reduction
        results = []
        if self.pooled if pooled is None else pooled:
            reduced, not_nans = do_metric_reduction(counts, red)
            values = self.from_counts(reduced, self.empty)
            results = [(values[n], not_nans[..., 0] if not_nans.ndim else not_nans) for n in self._names]
        else:
            values = self.from_counts(counts, self.empty)
            results = [do_metric_reduction(values[n], red) for n in self._names]
        out = [r if self.get_not_nans else r[0] for r in results]
        return out[0] if isinstance(self.metric_name, str) else out
