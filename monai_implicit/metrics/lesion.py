"""Lesion-wise detection metrics: GL, PL, TP, LTPR, LPPV, LFPR (both definitions), LDice (published and bounded), F1.

"NeRD: Neural Representation of Distribution for Medical Image Segmentation" (Zhang et al.), Sec. 4 "Evaluation
metrics", scores white-matter-hyperintensity segmentation lesion by lesion:
``LTPR = TP / GL``, ``LPPV = TP / PL``, ``LDice = 2 TP / (GL + PL)`` with ``TP`` the number of ground-truth
lesions overlapping a predicted lesion, ``GL`` / ``PL`` the numbers of ground-truth / predicted lesions, and
``LFPR = 1 - LPPV``. Other benchmarks (the WMH and ISBI 2015 MS lesion challenges) use other conventions, so every
one of them is computed and named here:

=================  ==================================================================================================
``gl``, ``pl``     numbers of ground-truth / predicted lesions (connected components)
``tp``             ground-truth lesions detected by the prediction (NeRD's single "TP" count)
``tp_pred``        predicted lesions that hit a ground-truth lesion
``ltpr``           ``tp / gl`` -- lesion-wise true positive rate = WMH-challenge lesion recall
``lppv``           ``tp / pl`` -- NeRD's lesion-wise positive predictive value (one TP count)
``lfpr_nerd``      ``1 - lppv`` -- NeRD's LFPR
``lprecision``     ``tp_pred / pl`` -- WMH-challenge lesion precision (two TP counts)
``lfpr_isbi``      ``(pl - tp_pred) / pl`` = ``1 - lprecision`` -- ISBI 2015 MS challenge LFPR: the fraction of
                   predicted lesions with no ground truth under them
``ldice``          ``2 tp / (gl + pl)`` -- NeRD's lesion-wise Dice
``ldice_bounded``  ``(tp + tp_pred) / (gl + pl)`` -- lesion-wise Dice with both TP counts: the fraction of all
                   lesions (ground truth and predicted) that are matched
``lf1``            ``2 ltpr lprecision / (ltpr + lprecision)`` -- WMH-challenge lesion F1
=================  ==================================================================================================

The two LFPRs differ under splits and merges: one ground-truth lesion split into two predictions gives
``tp = 1`` but ``tp_pred = 2``. Because NeRD uses one TP count for both rates, ``lppv`` and ``ldice`` exceed 1
(and ``lfpr_nerd`` turns negative) when one predicted lesion merges several ground-truth lesions: two lesions
bridged by one prediction give ``tp = 2``, ``pl = 1``, so ``lppv = 2`` and ``ldice = 4/3``.  The published
formulas are kept under their names (to compare with the paper), unclipped.

**Headline values.** What the bundles log and report as fractions are the bounded metrics
(:data:`BOUNDED_LESION_METRICS`), which lie in [0, 1] for every pair of masks because ``tp <= gl`` and
``tp_pred <= pl``: ``ltpr``; ``lprecision`` (LPPV counted on the predicted side, the bounded LPPV);
``lfpr_isbi`` (``1 - lprecision``, the bounded LFPR); ``ldice_bounded`` (the bounded LDice) and ``lf1``.
``ldice_bounded`` equals NeRD's ``ldice`` whenever matching is one-to-one (``tp == tp_pred``: no splits or
merges); under a merge it counts the bridged ground-truth lesions as found and the bridging prediction as one
true positive (``(2 + 1) / (2 + 1) = 1`` above), and under a split it counts both fragments as true positives.

Empty cases (``empty="wmh"``, the WMH-challenge convention): with no ground-truth lesion ``ltpr = 1``; with no
predicted lesion ``lppv = lprecision = 1`` and both LFPRs are 0; ``ldice = ldice_bounded = 1`` when both are empty;
``lf1 = 0`` when ``ltpr + lprecision = 0``. ``empty="nan"`` leaves every undefined ratio NaN instead, so that
``aggregate()`` skips it.

The counting is one contingency table per case: each mask is labelled once (connected components of the
foreground voxels only), and the overlap of every (ground-truth, predicted) pair of lesions is counted once
with ``np.bincount`` over the voxels the two masks share.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np
import torch
from monai.utils import MetricReduction
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from monai_implicit.utils import check_number, check_option, is_real

from .base import CountMetric, empty_fill, f1_score, safe_ratio
from .foreground import CaseMasks, iter_case_masks
from .spacing import SpacingLike, call_spacing, resolve_spacing

__all__ = [
    "LESION_COUNTS",
    "LESION_METRICS",
    "BOUNDED_LESION_METRICS",
    "OVERLAP_RULES",
    "connectivity_rank",
    "label_foreground",
    "compute_lesion_counts",
    "lesion_metrics_from_counts",
    "compute_lesion_wise",
    "LesionWiseMetric",
]

LESION_COUNTS = ("gl", "pl", "tp", "tp_pred")
LESION_METRICS = ("ltpr", "lppv", "lfpr_nerd", "lprecision", "lfpr_isbi", "ldice", "lf1", "ldice_bounded")
#: the lesion-wise metrics that lie in [0, 1] for any masks: the ones to log or report as fractions
BOUNDED_LESION_METRICS = ("ltpr", "lprecision", "lfpr_isbi", "ldice_bounded", "lf1")
OVERLAP_RULES = ("any", "fraction", "iou")
# beyond this many (gt, pred) pairs the dense contingency table is replaced by a sparse count (np.unique)
_DENSE_TABLE_LIMIT = 1 << 22


def connectivity_rank(connectivity: Optional[int], spatial_dims: int) -> int:
    """Translate a neighbour count into the rank of ``scipy.ndimage.generate_binary_structure``.

    Valid neighbour counts: 1D ``2``; 2D ``4`` (edges) or ``8`` (edges and corners); 3D ``6`` (faces), ``18``
    (and edges) or ``26`` (and corners). ``None`` = full connectivity (26 in 3D, 8 in 2D), the WMH challenge's
    choice (``SetFullyConnected(True)``).

    Raises:
        ValueError: a count that does not exist for ``spatial_dims``.
    """
    options = {int(ndimage.generate_binary_structure(spatial_dims, r).sum()) - 1: r for r in range(1, spatial_dims + 1)}
    if connectivity is None:
        return spatial_dims
    if connectivity not in options:  # True == 1 is never a neighbour count
        raise ValueError(
            f"connectivity for {spatial_dims}D images must be one of {tuple(options)} (neighbour count), "
            f"got {connectivity!r}."
        )
    return options[int(connectivity)]


def _forward_offsets(spatial_dims: int, rank: int) -> np.ndarray:
    """Neighbour offsets of the structuring element that come after the centre in C order (half of them)."""
    structure = ndimage.generate_binary_structure(spatial_dims, rank)
    offsets = np.argwhere(structure) - 1
    centre = len(offsets) // 2
    return offsets[centre + 1:]


def label_foreground(foreground: np.ndarray, shape: tuple[int, ...], rank: int) -> tuple[np.ndarray, int]:
    """Connected-component labels of a mask given by its sorted flat ``foreground`` indices.

    Equivalent to ``scipy.ndimage.label(mask, generate_binary_structure(ndim, rank))`` restricted to the
    foreground, but sparse masks (lesions in a large scan) are labelled as a graph over foreground voxels
    (``scipy.sparse.csgraph.connected_components``), which never touches the background; dense masks are
    labelled with ``scipy.ndimage.label`` on their bounding box.

    Returns:
        ``(labels, n)``: labels ``1..n`` aligned with ``foreground`` (component numbering is arbitrary).
    """
    n_fg = foreground.size
    if n_fg == 0:
        return np.zeros(0, dtype=np.int64), 0
    coords = np.stack(np.unravel_index(foreground, shape), axis=0)
    lo, hi = coords.min(axis=1), coords.max(axis=1) + 1
    box = tuple(int(h - low) for low, h in zip(lo, hi))
    local = coords - lo[:, None]
    if n_fg * 8 >= np.prod(box, dtype=np.float64):
        mask = np.zeros(box, dtype=bool)
        mask[tuple(local)] = True
        labels, n = ndimage.label(mask, ndimage.generate_binary_structure(len(shape), rank))
        return labels[tuple(local)].astype(np.int64), int(n)
    # sparse path: an edge between every pair of neighbouring foreground voxels, found by binary search in the
    # sorted index list (indices within the bounding box, so neighbours never wrap around an image edge)
    box_flat = np.ravel_multi_index(tuple(local), box)
    strides = np.array([int(np.prod(box[d + 1:], dtype=np.int64)) for d in range(len(box))], dtype=np.int64)
    src, dst = [], []
    for off in _forward_offsets(len(shape), rank):
        target = local + off[:, None]
        inside = np.all((target >= 0) & (target < np.asarray(box)[:, None]), axis=0)
        cand = np.flatnonzero(inside)
        nb = box_flat[cand] + int(off @ strides)
        pos = np.searchsorted(box_flat, nb)
        pos_c = np.minimum(pos, n_fg - 1)
        hit = box_flat[pos_c] == nb
        src.append(cand[hit])
        dst.append(pos_c[hit])
    i = np.concatenate(src)
    j = np.concatenate(dst)
    graph = coo_matrix((np.ones(i.size, dtype=np.int8), (i, j)), shape=(n_fg, n_fg))
    n, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64) + 1, int(n)


def _filter_small(labels: np.ndarray, n: int, voxel_volume: float, min_volume: float) -> tuple[np.ndarray, int]:
    """Relabel so that components smaller than ``min_volume`` (mm^3) become 0 and the rest are 1..n_kept."""
    if min_volume <= 0 or n == 0:
        return labels, n
    sizes = np.bincount(labels, minlength=n + 1)
    keep = sizes * voxel_volume >= min_volume
    keep[0] = False
    new_id = np.cumsum(keep) * keep
    return new_id[labels], int(keep.sum())


def _check_overlap(overlap: str, overlap_threshold: float) -> tuple[str, float]:
    overlap = check_option(overlap, OVERLAP_RULES, "overlap")
    if not is_real(overlap_threshold):
        raise TypeError(f"overlap_threshold must be a number, got {type(overlap_threshold).__name__}.")
    if overlap == "any" and overlap_threshold != 0:
        raise ValueError(
            f'overlap="any" takes no threshold (got overlap_threshold={overlap_threshold}); use overlap="fraction" '
            'or "iou" for a thresholded rule.'
        )
    if not 0 <= overlap_threshold < 1:
        raise ValueError(f"overlap_threshold must lie in [0, 1), got {overlap_threshold}.")
    return overlap, float(overlap_threshold)


def _case_counts(
    case: CaseMasks, spacing: tuple[float, ...], rank: int, min_volume: float, overlap: str, threshold: float
) -> tuple[int, int, int, int]:
    voxel_volume = float(np.prod(spacing))
    lab_g, n_g = label_foreground(case.gt, case.shape, rank)
    lab_p, n_p = label_foreground(case.pred, case.shape, rank)
    lab_g, n_g = _filter_small(lab_g, n_g, voxel_volume, min_volume)
    lab_p, n_p = _filter_small(lab_p, n_p, voxel_volume, min_volume)
    if n_g == 0 or n_p == 0:
        return n_g, n_p, 0, 0
    size_g = np.bincount(lab_g, minlength=n_g + 1)
    size_p = np.bincount(lab_p, minlength=n_p + 1)
    _, ig, ip = np.intersect1d(case.gt, case.pred, assume_unique=True, return_indices=True)
    gi, pj = lab_g[ig], lab_p[ip]
    shared = (gi > 0) & (pj > 0)  # voxels of removed (too small) lesions do not count
    code = gi[shared] * (n_p + 1) + pj[shared]
    # the contingency table: overlap (in voxels) of every (gt lesion, predicted lesion) pair, counted once
    if (n_g + 1) * (n_p + 1) <= _DENSE_TABLE_LIMIT:
        table = np.bincount(code, minlength=(n_g + 1) * (n_p + 1))
        code = np.flatnonzero(table)
        inter = table[code]
    else:
        code, inter = np.unique(code, return_counts=True)
    pair_g, pair_p = np.divmod(code, n_p + 1)
    if overlap == "any":
        hit = np.ones(pair_g.shape, dtype=bool)
        hit_g, hit_p = pair_g[hit], pair_p[hit]
    elif overlap == "fraction":
        covered_g = np.bincount(pair_g, weights=inter, minlength=n_g + 1)
        covered_p = np.bincount(pair_p, weights=inter, minlength=n_p + 1)
        hit_g = np.flatnonzero(covered_g[1:] > threshold * size_g[1:]) + 1
        hit_p = np.flatnonzero(covered_p[1:] > threshold * size_p[1:]) + 1
    else:
        iou = inter / (size_g[pair_g] + size_p[pair_p] - inter)
        hit = iou > threshold
        hit_g, hit_p = pair_g[hit], pair_p[hit]
    return n_g, n_p, int(np.unique(hit_g).size), int(np.unique(hit_p).size)


def compute_lesion_counts(
    y_pred: Union[np.ndarray, torch.Tensor],
    y: Union[np.ndarray, torch.Tensor],
    include_background: bool = False,
    connectivity: Optional[int] = None,
    min_lesion_volume: float = 0.0,
    overlap: str = "any",
    overlap_threshold: float = 0.0,
    spacing: SpacingLike = None,
    num_classes: Optional[int] = None,
    spatial_dims: Optional[int] = None,
) -> torch.Tensor:
    """Lesion counts ``(gl, pl, tp, tp_pred)`` per case and class (NeRD, Zhang et al., Sec. 4).

    Args:
        y_pred: binary prediction ``(B, C, *spatial)``: ``C == 1`` binary, ``C > 1`` one-hot, or ``C == 1`` label
            map with ``num_classes``; torch tensor or numpy array.
        y: ground truth, same shape and format.
        include_background: keep class 0 of one-hot inputs / label maps (default False, like MONAI).
        connectivity: neighbour count defining a lesion: 3D 6/18/26, 2D 4/8; ``None`` = 26 / 8 (WMH challenge).
        min_lesion_volume: lesions (in both masks) smaller than this volume in mm^3 are ignored: they are not
            counted and their voxels do not create overlaps. Volumes use ``spacing``. Kept when ``>=``.
        overlap: when a ground-truth and a predicted lesion match:
            ``"any"`` (default): they share at least one voxel (WMH, ISBI, NeRD);
            ``"fraction"``: a lesion is hit when more than ``overlap_threshold`` of its voxels are covered by
            lesions of the other mask (e.g. 0.1 as in Anima/MSSEG);
            ``"iou"``: a pair matches when its intersection over union exceeds ``overlap_threshold``.
        overlap_threshold: threshold in [0, 1) for ``"fraction"`` / ``"iou"`` (strict ``>``); must be 0 for
            ``"any"``.
        spacing: voxel size in mm (number, one per axis, or one entry per case); used by ``min_lesion_volume``.
        num_classes: classes (with background) for single-channel label maps.
        spatial_dims: the number of spatial axes the inputs must have (e.g. 3 for volumes); None (default)
            accepts 2 or more. 1D masks need ``spatial_dims=1``: a ``(B, C, L)`` batch has as many axes as one
            unbatched volume ``(X, Y, Z)``, which is refused instead of being counted as 1D masks.

    Returns:
        float32 tensor ``(B, n_classes, 4)`` with the counts ``gl, pl, tp, tp_pred`` (see module docstring).

    Raises:
        ValueError / TypeError: shape mismatch, not batch-first, non-binary values, invalid connectivity,
            overlap rule, threshold, volume or spacing.
    """
    overlap, threshold = _check_overlap(overlap, overlap_threshold)
    # an infinite minimum volume would silently drop every lesion
    min_volume = check_number(min_lesion_volume, "min_lesion_volume", low=0.0)
    (batch, n_classes), cases = iter_case_masks(
        y_pred, y, include_background, num_classes, min_spatial_dims=2, spatial_dims=spatial_dims
    )
    spatial_dims = len(y_pred.shape) - 2
    rank = connectivity_rank(connectivity, spatial_dims)
    spacings = resolve_spacing(spacing, batch, spatial_dims)
    out = torch.zeros((batch, n_classes, len(LESION_COUNTS)), dtype=torch.float32)
    for case in cases:
        counts = _case_counts(case, spacings[case.batch], rank, min_volume, overlap, threshold)
        out[case.batch, case.channel] = torch.tensor(counts, dtype=torch.float32)
    return out


def lesion_metrics_from_counts(counts: torch.Tensor, empty: str = "wmh") -> dict[str, torch.Tensor]:
    """Every lesion-wise count and ratio from counts ``(..., 4)`` = ``(gl, pl, tp, tp_pred)``.

    Args:
        counts: output of :func:`compute_lesion_counts` (or a reduction of it over cases).
        empty: ``"wmh"`` (WMH-challenge values for empty cases, see module docstring) or ``"nan"``.

    Returns:
        ``{name: tensor (...)}`` for the names in ``LESION_COUNTS + LESION_METRICS``.
    """
    fill = empty_fill(empty)
    if counts.shape[-1] != len(LESION_COUNTS):
        raise ValueError(f"counts must end with {len(LESION_COUNTS)} entries {LESION_COUNTS}, got {counts.shape}.")
    counts = counts.double()
    gl, pl, tp, tp_pred = counts.unbind(-1)
    ltpr = safe_ratio(tp, gl, fill)
    lppv = safe_ratio(tp, pl, fill)
    lprecision = safe_ratio(tp_pred, pl, fill)
    ldice = safe_ratio(2 * tp, gl + pl, fill)
    ldice_bounded = safe_ratio(tp + tp_pred, gl + pl, fill)
    lf1 = f1_score(ltpr, lprecision)
    return {
        "gl": gl, "pl": pl, "tp": tp, "tp_pred": tp_pred,
        "ltpr": ltpr, "lppv": lppv, "lfpr_nerd": 1.0 - lppv, "lprecision": lprecision, "lfpr_isbi": 1.0 - lprecision,
        "ldice": ldice, "lf1": lf1, "ldice_bounded": ldice_bounded,
    }


def compute_lesion_wise(
    y_pred: Union[np.ndarray, torch.Tensor],
    y: Union[np.ndarray, torch.Tensor],
    include_background: bool = False,
    connectivity: Optional[int] = None,
    min_lesion_volume: float = 0.0,
    overlap: str = "any",
    overlap_threshold: float = 0.0,
    spacing: SpacingLike = None,
    num_classes: Optional[int] = None,
    empty: str = "wmh",
    spatial_dims: Optional[int] = None,
) -> dict[str, torch.Tensor]:
    """All lesion-wise counts and metrics per case and class (NeRD, Zhang et al., Sec. 4).

    Arguments as :func:`compute_lesion_counts`, plus ``empty`` (``"wmh"`` or ``"nan"``, see module docstring).

    Returns:
        ``{name: float64 tensor (B, n_classes)}`` for ``gl, pl, tp, tp_pred, ltpr, lppv, lfpr_nerd, lprecision,
        lfpr_isbi, ldice, lf1, ldice_bounded``; the ones to report as fractions are :data:`BOUNDED_LESION_METRICS`.

    Example::

        >>> pred = torch.zeros(1, 1, 32, 32, 16); gt = torch.zeros(1, 1, 32, 32, 16)
        >>> gt[0, 0, 2:6, 2:6, 2:6] = 1; gt[0, 0, 20:24, 20:24, 8:12] = 1
        >>> pred[0, 0, 3:7, 3:7, 3:7] = 1
        >>> compute_lesion_wise(pred, gt)["ltpr"]
        tensor([[0.5000]], dtype=torch.float64)
    """
    counts = compute_lesion_counts(y_pred, y, include_background, connectivity, min_lesion_volume, overlap,
                                   overlap_threshold, spacing, num_classes, spatial_dims)
    return lesion_metrics_from_counts(counts, empty)


class LesionWiseMetric(CountMetric):
    """Cumulative lesion-wise metrics (NeRD, Zhang et al., Sec. 4): the buffer keeps the per-case lesion counts.

    ``aggregate()`` returns the metric(s) named in ``metric_name`` averaged over non-NaN cases, or computed from
    the pooled counts with ``pooled=True`` (e.g. the fraction of all lesions of the data set that were found);
    ``get_details()`` returns every count and ratio per case. Spacing (for ``min_lesion_volume``) comes from the
    call's ``spacing`` keyword, else the constructor, else the affine of a MetaTensor ``y``, else 1 mm.

    Args:
        metric_name: one name or a sequence from ``LESION_METRICS + LESION_COUNTS``: ``"ltpr"``, ``"lppv"``,
            ``"lfpr_nerd"``, ``"lprecision"``, ``"lfpr_isbi"``, ``"ldice"``, ``"lf1"``, ``"ldice_bounded"``
            (default: the bounded LDice, see the module docstring), ``"gl"``, ``"pl"``, ``"tp"``, ``"tp_pred"``.
        include_background, connectivity, min_lesion_volume, overlap, overlap_threshold, num_classes: see
            :func:`compute_lesion_counts`.
        spacing: default voxel size in mm.
        empty: ``"wmh"`` (default) or ``"nan"``, see the module docstring.
        pooled: derive the ratios from the counts reduced over cases instead of averaging per-case ratios.
        reduction: MONAI ``MetricReduction`` over cases (default ``"mean"``).
        get_not_nans: ``aggregate()`` also returns the number of non-NaN values.
        spatial_dims: spatial axes of every case (None: 2 or more; 1D needs ``spatial_dims=1``); a batch tensor must
            then have ``spatial_dims + 2`` axes.

    Example::

        metric = LesionWiseMetric(metric_name=("ltpr", "lfpr_isbi", "lf1"), connectivity=26, min_lesion_volume=3)
        for batch in loader:
            metric(y_pred=post(model(batch["image"])), y=batch["label"])
        ltpr, lfpr, lf1 = metric.aggregate()
    """

    COUNT_NAMES = LESION_COUNTS
    METRIC_NAMES = LESION_METRICS

    def __init__(
        self,
        metric_name: Union[str, Sequence[str]] = "ldice_bounded",
        include_background: bool = False,
        connectivity: Optional[int] = None,
        min_lesion_volume: float = 0.0,
        overlap: str = "any",
        overlap_threshold: float = 0.0,
        spacing: SpacingLike = None,
        num_classes: Optional[int] = None,
        empty: str = "wmh",
        pooled: bool = False,
        reduction: Union[MetricReduction, str] = MetricReduction.MEAN,
        get_not_nans: bool = False,
        spatial_dims: Optional[int] = None,
    ) -> None:
        super().__init__(metric_name, empty, pooled, reduction, get_not_nans)
        valid = {int(ndimage.generate_binary_structure(d, r).sum()) - 1 for d in (1, 2, 3) for r in range(1, d + 1)}
        if connectivity is not None:  # a neighbour count (True == 1 is none)
            check_option(connectivity, sorted(valid), "connectivity")
        self.include_background = include_background
        self.connectivity = connectivity
        self.min_lesion_volume = min_lesion_volume
        self.overlap, self.overlap_threshold = _check_overlap(overlap, overlap_threshold)
        self.spacing = spacing
        self.num_classes = num_classes
        self.spatial_dims = spatial_dims

    from_counts = staticmethod(lesion_metrics_from_counts)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        return compute_lesion_counts(
            y_pred, y, self.include_background, self.connectivity, self.min_lesion_volume, self.overlap,
            self.overlap_threshold, call_spacing(y, kwargs.get("spacing"), self.spacing), self.num_classes,
            self.spatial_dims,
        ).to(y_pred.device)
