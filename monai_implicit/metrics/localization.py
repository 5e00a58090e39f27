"""Localisation F1 for 1D signals: detected peaks matched one-to-one to ground-truth positions within a tolerance.

Implements the score of the ultrasound RF micro-bubble localisation study of "Continuous representation of kernels
used in convolutional neural networks" (Jonker, BSc thesis), Sec. 4, Eqs. 7-9: the network output is thresholded
(``phi_th``), its peaks are the detections, and a
detection is a true positive when it lies within ``t_tol`` samples of a ground-truth bubble. Every detection and
every bubble is used at most once: the matching is a maximum-cardinality assignment (minimum total distance
among those) solved with ``scipy.optimize.linear_sum_assignment`` -- a greedy nearest-neighbour matching can
pair a detection with the wrong bubble and lose a match.

``precision = TP / n_detections``, ``recall = TP / n_bubbles``, ``F1 = 2 P R / (P + R)``. Empty signals follow
the same convention as the WMH challenge (``empty="wmh"``): recall 1 with no bubble, precision 1 with no
detection, F1 0 when ``P + R = 0`` (so F1 is 1 only when both are empty); ``empty="nan"`` leaves undefined
ratios NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np
import torch
from monai.utils import MetricReduction
from scipy.optimize import linear_sum_assignment
from scipy.signal import find_peaks

from monai_implicit.utils import check_number, check_positive_int

from .base import CountMetric, empty_fill, f1_score, safe_ratio
from .validation import as_numpy

__all__ = [
    "LOCALIZATION_COUNTS",
    "LOCALIZATION_METRICS",
    "find_signal_peaks",
    "match_positions",
    "compute_localization_counts",
    "localization_metrics_from_counts",
    "compute_localization_f1",
    "LocalizationF1Metric",
]

LOCALIZATION_COUNTS = ("n_true", "n_detected", "tp")
LOCALIZATION_METRICS = ("precision", "recall", "f1")


def find_signal_peaks(signal: np.ndarray, threshold: float = 0.5, min_distance: Optional[int] = None) -> np.ndarray:
    """Positions of the local maxima of a 1D ``signal`` whose height is ``>= threshold``.

    ``scipy.signal.find_peaks`` semantics (a flat top counts once, at its middle), except that maxima at the
    first and last sample count too: a bubble at the edge of the recording is still a detection.

    Args:
        signal: shape ``(L,)``.
        threshold: minimum peak height (``phi_th`` in Jonker's thesis).
        min_distance: optional minimum distance in samples between peaks (``find_peaks(distance=...)``).
    """
    padded = np.concatenate([[-np.inf], np.asarray(signal, dtype=np.float64), [-np.inf]])
    peaks, _ = find_peaks(padded, height=threshold, distance=min_distance)
    return peaks - 1


def match_positions(detected: np.ndarray, true: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of ``detected`` to ``true`` positions with ``|d - t| <= tolerance``.

    Maximises the number of matches and, among maximal matchings, minimises the total distance. Positions are
    split into independent clusters (gaps larger than ``tolerance`` separate them), each solved with
    ``linear_sum_assignment``, so long signals with many events stay cheap.

    Returns:
        ``(i_detected, i_true)``: indices of matched pairs into the two inputs.
    """
    d = np.asarray(detected, dtype=np.float64).reshape(-1)
    t = np.asarray(true, dtype=np.float64).reshape(-1)
    if d.size == 0 or t.size == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    pos = np.concatenate([d, t])
    owner = np.concatenate([np.zeros(d.size, dtype=bool), np.ones(t.size, dtype=bool)])
    index = np.concatenate([np.arange(d.size), np.arange(t.size)])
    order = np.argsort(pos, kind="stable")
    cluster = np.concatenate([[0], np.cumsum(np.diff(pos[order]) > tolerance)])
    out_d, out_t = [], []
    for c in np.unique(cluster):
        members = order[cluster == c]
        di = index[members[~owner[members]]]
        ti = index[members[owner[members]]]
        if di.size == 0 or ti.size == 0:
            continue
        dist = np.abs(d[di][:, None] - t[ti][None, :])
        allowed = dist <= tolerance
        # a forbidden pair costs more than any sum of allowed distances, so the optimum uses as few forbidden
        # pairs as possible (maximum number of matches) before it minimises distance
        big = (tolerance + 1.0) * (min(di.size, ti.size) + 1)
        rows, cols = linear_sum_assignment(np.where(allowed, dist, big))
        keep = allowed[rows, cols]
        out_d.append(di[rows[keep]])
        out_t.append(ti[cols[keep]])
    if not out_d:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    return np.concatenate(out_d).astype(np.intp), np.concatenate(out_t).astype(np.intp)


def _check_args(threshold: float, tolerance: float, min_distance: Optional[int]) -> None:
    check_number(threshold, "threshold")
    # an infinite tolerance would match every detection to any true position
    check_number(tolerance, "tolerance", low=0.0)
    if min_distance is not None:
        check_positive_int(min_distance, "min_distance")


def _as_scores(x: Any, name: str) -> np.ndarray:
    # floating-point tensors are scored in float32 (half precision is widened, double narrowed)
    return as_numpy(x.float() if isinstance(x, torch.Tensor) and x.is_floating_point() else x, name)


def compute_localization_counts(
    y_pred: Union[np.ndarray, torch.Tensor],
    y: Union[np.ndarray, torch.Tensor],
    threshold: float = 0.5,
    tolerance: float = 4,
    min_distance: Optional[int] = None,
) -> torch.Tensor:
    """Counts ``(n_true, n_detected, tp)`` per signal and channel (Jonker's thesis, Sec. 4).

    Args:
        y_pred: network output, ``(B, C, L)`` real scores (e.g. sigmoid probabilities); peaks ``>= threshold``
            are the detections.
        y: ground truth, ``(B, C, L)`` binary spike trains: 1 at every true event (bubble) position.
        threshold: minimum peak height ``phi_th`` (the thesis tunes it per tolerance; 0.1 at ``t_tol = 4``).
        tolerance: ``t_tol``, the largest distance in samples at which a detection still counts.
        min_distance: optional minimum separation of detected peaks in samples.

    Returns:
        float32 tensor ``(B, C, 3)``.

    Raises:
        ValueError / TypeError: shapes differ, not 1D ``(B, C, L)``, non-binary ``y``, invalid arguments.
    """
    _check_args(threshold, tolerance, min_distance)
    yp, yt = _as_scores(y_pred, "y_pred"), _as_scores(y, "y")
    if yp.shape != yt.shape:
        raise ValueError(f"y_pred and y must have the same shape, got {tuple(yp.shape)} and {tuple(yt.shape)}.")
    if yp.ndim != 3:
        raise ValueError(f"localisation F1 is defined for 1D signals (B, C, L), got shape {tuple(yp.shape)}.")
    if not np.all((yt == 0) | (yt == 1)):
        raise ValueError("y must be a binary spike train (1 at each true event position, 0 elsewhere).")
    if not np.all(np.isfinite(yp)):
        raise ValueError("y_pred contains NaN or infinite values.")
    batch, channels = yp.shape[:2]
    out = torch.zeros((batch, channels, len(LOCALIZATION_COUNTS)), dtype=torch.float32)
    for b in range(batch):
        for c in range(channels):
            detected = find_signal_peaks(yp[b, c], threshold, min_distance)
            true = np.flatnonzero(yt[b, c])
            matched, _ = match_positions(detected, true, tolerance)
            out[b, c] = torch.tensor([true.size, detected.size, matched.size], dtype=torch.float32)
    return out


def localization_metrics_from_counts(counts: torch.Tensor, empty: str = "wmh") -> dict[str, torch.Tensor]:
    """``n_true, n_detected, tp, precision, recall, f1`` from counts ``(..., 3)`` (see module docstring)."""
    fill = empty_fill(empty)
    if counts.shape[-1] != len(LOCALIZATION_COUNTS):
        raise ValueError(f"counts must end with {len(LOCALIZATION_COUNTS)} entries, got {tuple(counts.shape)}.")
    n_true, n_det, tp = counts.double().unbind(-1)
    precision = safe_ratio(tp, n_det, fill)
    recall = safe_ratio(tp, n_true, fill)
    f1 = f1_score(precision, recall)
    return {"n_true": n_true, "n_detected": n_det, "tp": tp, "precision": precision, "recall": recall, "f1": f1}


def compute_localization_f1(
    y_pred: Union[np.ndarray, torch.Tensor],
    y: Union[np.ndarray, torch.Tensor],
    threshold: float = 0.5,
    tolerance: float = 4,
    min_distance: Optional[int] = None,
    empty: str = "wmh",
) -> dict[str, torch.Tensor]:
    """Precision, recall and F1 of peak localisation per signal (Jonker's thesis, Sec. 4, Eqs. 7-9).

    Arguments as :func:`compute_localization_counts`, plus ``empty`` (``"wmh"`` or ``"nan"``).

    Returns:
        ``{"n_true", "n_detected", "tp", "precision", "recall", "f1"}``, each a float64 tensor ``(B, C)``.

    Example::

        >>> y = torch.zeros(1, 1, 100); y[0, 0, [10, 50]] = 1
        >>> y_pred = torch.zeros(1, 1, 100); y_pred[0, 0, 12] = 0.9; y_pred[0, 0, 80] = 0.8
        >>> compute_localization_f1(y_pred, y, threshold=0.5, tolerance=4)["f1"]
        tensor([[0.5000]], dtype=torch.float64)
    """
    return localization_metrics_from_counts(
        compute_localization_counts(y_pred, y, threshold, tolerance, min_distance), empty
    )


class LocalizationF1Metric(CountMetric):
    """Cumulative localisation precision / recall / F1 for 1D signals (Jonker's thesis, Sec. 4).

    Per call: ``y_pred`` scores and ``y`` binary spike trains, ``(B, C, L)`` or lists of ``(C, L)``.
    ``aggregate()`` averages the per-signal value(s) of ``metric_name`` (the thesis reports the mean F1 over
    test signals), or derives them from pooled counts with ``pooled=True``; ``get_details()`` gives every
    count and ratio per signal.

    Args:
        metric_name: ``"f1"`` (default), ``"precision"``, ``"recall"``, a count name, or a sequence of them.
        threshold: minimum peak height.
        tolerance: matching tolerance in samples (``t_tol = 4`` in Jonker's thesis).
        min_distance: optional minimum separation of detected peaks.
        empty: ``"wmh"`` (default) or ``"nan"`` (module docstring).
        pooled: ratios from counts reduced over signals instead of the mean of per-signal ratios.
        reduction: MONAI ``MetricReduction`` over signals (default ``"mean"``).
        get_not_nans: ``aggregate()`` also returns the number of non-NaN values.
    """

    COUNT_NAMES = LOCALIZATION_COUNTS
    METRIC_NAMES = LOCALIZATION_METRICS

    def __init__(
        self,
        metric_name: Union[str, Sequence[str]] = "f1",
        threshold: float = 0.5,
        tolerance: float = 4,
        min_distance: Optional[int] = None,
        empty: str = "wmh",
        pooled: bool = False,
        reduction: Union[MetricReduction, str] = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(metric_name, empty, pooled, reduction, get_not_nans)
        _check_args(threshold, tolerance, min_distance)
        self.threshold = threshold
        self.tolerance = tolerance
        self.min_distance = min_distance

    from_counts = staticmethod(localization_metrics_from_counts)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        return compute_localization_counts(y_pred, y, self.threshold, self.tolerance, self.min_distance).to(
            y_pred.device
        )
