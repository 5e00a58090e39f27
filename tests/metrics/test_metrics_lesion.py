"""Lesion-wise metrics against hand-built cases with known answers and a naive per-lesion loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from scipy import ndimage

from monai_implicit.metrics import (
    LesionWiseMetric,
    compute_lesion_counts,
    compute_lesion_wise,
    connectivity_rank,
    label_foreground,
)


def batch(*masks):
    return torch.from_numpy(np.stack(masks)[:, None].astype(np.float32))


def box(mask, *slices):
    mask[tuple(slices)] = True
    return mask


def values(pred, gt, **kwargs):
    return {k: v.item() for k, v in compute_lesion_wise(batch(pred), batch(gt), **kwargs).items()}


def naive_counts(pred, gt, connectivity_rank_, spacing, min_volume=0.0, overlap="any", threshold=0.0):
    """Independent reference: full-volume scipy labels and one boolean mask per lesion."""
    structure = ndimage.generate_binary_structure(pred.ndim, connectivity_rank_)
    lg, ng = ndimage.label(gt, structure)
    lp, npred = ndimage.label(pred, structure)
    vox = float(np.prod(spacing))
    gts = [lg == i for i in range(1, ng + 1) if (lg == i).sum() * vox >= min_volume]
    preds = [lp == j for j in range(1, npred + 1) if (lp == j).sum() * vox >= min_volume]
    pred_fg = np.any(preds, axis=0) if preds else np.zeros_like(pred)
    gt_fg = np.any(gts, axis=0) if gts else np.zeros_like(gt)

    def hit(a, others_fg, others):
        if overlap == "any":
            return (a & others_fg).any()
        if overlap == "fraction":
            return (a & others_fg).sum() > threshold * a.sum()
        return any((a & o).sum() / (a | o).sum() > threshold for o in others)

    tp = sum(bool(hit(g, pred_fg, preds)) for g in gts)
    tp_pred = sum(bool(hit(p, gt_fg, gts)) for p in preds)
    return len(gts), len(preds), tp, tp_pred


def test_missed_lesion_and_far_false_positive():
    gt = np.zeros((30, 30, 12), bool)
    pred = np.zeros_like(gt)
    box(gt, slice(2, 6), slice(2, 6), slice(2, 5))
    box(gt, slice(20, 24), slice(20, 24), slice(6, 9))  # missed
    box(pred, slice(3, 7), slice(3, 7), slice(3, 6))
    v = values(pred, gt)
    assert (v["gl"], v["pl"], v["tp"], v["tp_pred"]) == (2, 1, 1, 1)
    assert v["ltpr"] == 0.5 and v["lppv"] == 1.0 and v["lfpr_isbi"] == 0.0 and v["lfpr_nerd"] == 0.0
    assert v["ldice"] == pytest.approx(2 / 3) and v["lf1"] == pytest.approx(2 * 0.5 / 1.5)
    box(pred, slice(12, 14), slice(25, 28), slice(0, 2))  # far false positive
    v = values(pred, gt)
    assert (v["gl"], v["pl"], v["tp"], v["tp_pred"]) == (2, 2, 1, 1)
    assert v["lfpr_isbi"] == 0.5 and v["lfpr_nerd"] == 0.5 and v["lppv"] == 0.5 and v["ldice"] == 0.5


def test_split_lesion_separates_the_two_lfpr_definitions():
    # ISBI 2015 vs NeRD lesion-wise definitions: one GT lesion split in two predictions gives
    # ISBI LFPR 0.2 vs NeRD 0.3 on this layout:
    # 6 lesions found once, 1 lesion split in two, 2 false positives -> PL = 10, TP = 7, TP_pred = 8
    gt = np.zeros((60, 60, 6), bool)
    pred = np.zeros_like(gt)
    centres = [(5 + 12 * (k % 4), 5 + 12 * (k // 4)) for k in range(7)]
    for k, (x, y) in enumerate(centres):
        box(gt, slice(x, x + 6), slice(y, y + 6), slice(1, 4))
        if k < 6:
            box(pred, slice(x + 1, x + 5), slice(y + 1, y + 5), slice(1, 4))
        else:  # split: two separate predictions inside the same GT lesion
            box(pred, slice(x, x + 2), slice(y, y + 6), slice(1, 4))
            box(pred, slice(x + 4, x + 6), slice(y, y + 6), slice(1, 4))
    box(pred, slice(50, 53), slice(50, 53), slice(1, 3))
    box(pred, slice(55, 58), slice(40, 43), slice(1, 3))
    v = values(pred, gt)
    assert (v["gl"], v["pl"], v["tp"], v["tp_pred"]) == (7, 10, 7, 8)
    assert v["lfpr_isbi"] == pytest.approx(0.2)
    assert v["lfpr_nerd"] == pytest.approx(0.3)
    assert v["ltpr"] == 1.0 and v["lprecision"] == pytest.approx(0.8)
    assert v["ldice"] == pytest.approx(14 / 17)
    assert v["lf1"] == pytest.approx(2 * 0.8 / 1.8)


def test_merged_lesions_nerd_ratios_exceed_one():
    gt = np.zeros((20, 20, 5), bool)
    pred = np.zeros_like(gt)
    box(gt, slice(2, 6), slice(2, 6), slice(1, 4))
    box(gt, slice(8, 12), slice(2, 6), slice(1, 4))
    box(pred, slice(3, 11), slice(3, 5), slice(2, 3))  # one prediction bridging both
    v = values(pred, gt)
    assert (v["gl"], v["pl"], v["tp"], v["tp_pred"]) == (2, 1, 2, 1)
    assert v["lppv"] == 2.0 and v["lfpr_nerd"] == -1.0 and v["ldice"] == pytest.approx(4 / 3)
    assert v["lprecision"] == 1.0 and v["lfpr_isbi"] == 0.0 and v["lf1"] == 1.0


def test_connectivity_diagonal_touching():
    corner = np.zeros((8, 8, 8), bool)
    corner[2, 2, 2] = corner[3, 3, 3] = True  # share only a corner
    edge = np.zeros((8, 8, 8), bool)
    edge[2, 2, 2] = edge[3, 3, 2] = True  # share an edge
    empty = np.zeros_like(corner)
    for mask, expected in ((corner, {6: 2, 18: 2, 26: 1, None: 1}), (edge, {6: 2, 18: 1, 26: 1})):
        for conn, n in expected.items():
            assert values(empty, mask, connectivity=conn)["gl"] == n, (conn, n)
    plane = np.zeros((6, 6), bool)
    plane[1, 1] = plane[2, 2] = True
    assert values(np.zeros_like(plane), plane, connectivity=4)["gl"] == 2
    assert values(np.zeros_like(plane), plane, connectivity=8)["gl"] == 1
    assert values(np.zeros_like(plane), plane)["gl"] == 1  # default 8 in 2D


def test_min_lesion_volume_uses_spacing():
    gt = np.zeros((12, 12, 6), bool)
    gt[1, 1, 1] = True  # 1 voxel = 2 mm^3
    gt[6, 6, 2:4] = True  # 2 voxels = 4 mm^3
    pred = np.zeros_like(gt)
    pred[1, 1, 1] = True  # would detect the small lesion, but is small itself
    v = values(pred, gt, spacing=(1.0, 1.0, 2.0), min_lesion_volume=3.0)
    assert (v["gl"], v["pl"], v["tp"], v["tp_pred"]) == (1, 0, 0, 0)
    v = values(pred, gt, spacing=(1.0, 1.0, 2.0), min_lesion_volume=2.0)  # kept when >= the minimum
    assert (v["gl"], v["pl"], v["tp"], v["tp_pred"]) == (2, 1, 1, 1)


def test_fraction_and_iou_rules():
    gt = np.zeros((20, 20), bool)
    pred = np.zeros_like(gt)
    gt[2:4, 2:7] = True  # 10 pixels
    pred[2, 2] = True  # covers 1/10 of the lesion, IoU 0.1
    assert values(pred, gt, overlap="fraction", overlap_threshold=0.05)["tp"] == 1
    assert values(pred, gt, overlap="fraction", overlap_threshold=0.1)["tp"] == 0  # strict
    # the prediction is fully inside the lesion: its own fraction is 1
    assert values(pred, gt, overlap="fraction", overlap_threshold=0.5)["tp_pred"] == 1
    assert values(pred, gt, overlap="iou", overlap_threshold=0.09)["tp"] == 1
    assert values(pred, gt, overlap="iou", overlap_threshold=0.1)["tp"] == 0


@pytest.mark.parametrize("empty", ["wmh", "nan"])
def test_empty_cases(empty):
    shape = (10, 10, 4)
    lesion = box(np.zeros(shape, bool), slice(2, 4), slice(2, 4), slice(1, 3))
    none = np.zeros(shape, bool)
    nan = math.nan
    both = values(none, none, empty=empty)
    missed = values(none, lesion, empty=empty)
    spurious = values(lesion, none, empty=empty)
    if empty == "wmh":
        expected_both = {"ltpr": 1, "lppv": 1, "lprecision": 1, "lfpr_isbi": 0, "lfpr_nerd": 0, "ldice": 1, "lf1": 1}
        expected_missed = {"ltpr": 0, "lppv": 1, "lprecision": 1, "lfpr_isbi": 0, "ldice": 0, "lf1": 0}
        expected_spurious = {"ltpr": 1, "lppv": 0, "lprecision": 0, "lfpr_isbi": 1, "lfpr_nerd": 1, "ldice": 0,
                             "lf1": 0}
    else:
        expected_both = {"ltpr": nan, "lppv": nan, "lfpr_isbi": nan, "ldice": nan, "lf1": nan}
        expected_missed = {"ltpr": 0, "lppv": nan, "lfpr_nerd": nan, "ldice": 0, "lf1": nan}
        expected_spurious = {"ltpr": nan, "lppv": 0, "lfpr_isbi": 1, "ldice": 0, "lf1": nan}
    for got, expected in ((both, expected_both), (missed, expected_missed), (spurious, expected_spurious)):
        for k, e in expected.items():
            assert (math.isnan(got[k]) and math.isnan(e)) or got[k] == e, (k, got[k], e)


@pytest.mark.parametrize("spatial_dims,connectivity", [(2, 4), (2, 8), (3, 6), (3, 18), (3, 26)])
@pytest.mark.parametrize("overlap,threshold", [("any", 0.0), ("fraction", 0.3), ("iou", 0.2)])
def test_random_cases_against_naive_loop(spatial_dims, connectivity, overlap, threshold):
    rng = np.random.default_rng(spatial_dims * 100 + connectivity)
    shape = (48, 40) if spatial_dims == 2 else (24, 20, 12)
    spacing = (0.9, 1.3) if spatial_dims == 2 else (0.8, 0.8, 2.5)
    preds, gts = [], []
    for density in (0.08, 0.45):  # sparse (graph labelling) and dense (ndimage.label on the box) paths
        for _ in range(2):
            preds.append(rng.random(shape) < density)
            gts.append(ndimage.binary_opening(rng.random(shape) < density + 0.3) if density > 0.3 else
                       rng.random(shape) < density)
    counts = compute_lesion_counts(batch(*preds), batch(*gts), connectivity=connectivity, overlap=overlap,
                                   overlap_threshold=threshold, spacing=spacing, min_lesion_volume=2.0)
    rank = connectivity_rank(connectivity, spatial_dims)
    for b, (p, g) in enumerate(zip(preds, gts)):
        expected = naive_counts(p, g, rank, spacing, 2.0, overlap, threshold)
        assert tuple(int(v) for v in counts[b, 0].tolist()) == expected


@pytest.mark.parametrize("shape,rank", [((50,), 1), ((30, 25), 1), ((30, 25), 2), ((14, 12, 10), 2)])
def test_label_foreground_matches_ndimage_partition(shape, rank):
    rng = np.random.default_rng(4)
    for density in (0.05, 0.6):
        mask = rng.random(shape) < density
        fg = np.flatnonzero(mask)
        labels, n = label_foreground(fg, mask.shape, rank)
        ref, n_ref = ndimage.label(mask, ndimage.generate_binary_structure(len(shape), rank))
        ref = ref.ravel()[fg]
        assert n == n_ref
        # the same partition: a bijection between our labels and scipy's
        pairs = np.unique(np.stack([labels, ref]), axis=1)
        assert pairs.shape[1] == n


def test_multiclass_one_hot_and_label_map():
    rng = np.random.default_rng(8)
    shape = (20, 18, 8)
    lab_p = rng.integers(0, 3, size=(2, *shape)) * (rng.random((2, *shape)) < 0.1)
    lab_t = rng.integers(0, 3, size=(2, *shape)) * (rng.random((2, *shape)) < 0.1)
    onehot_p = torch.nn.functional.one_hot(torch.from_numpy(lab_p), 3).movedim(-1, 1)
    onehot_t = torch.nn.functional.one_hot(torch.from_numpy(lab_t), 3).movedim(-1, 1)
    counts = compute_lesion_counts(onehot_p, onehot_t)
    assert counts.shape == (2, 2, 4)
    from_labels = compute_lesion_counts(torch.from_numpy(lab_p)[:, None], torch.from_numpy(lab_t)[:, None],
                                        num_classes=3)
    torch.testing.assert_close(counts, from_labels)
    for b in range(2):
        for c in (1, 2):
            expected = naive_counts(lab_p[b] == c, lab_t[b] == c, 3, (1, 1, 1))
            assert tuple(int(v) for v in counts[b, c - 1].tolist()) == expected
    with_bg = compute_lesion_counts(onehot_p, onehot_t, include_background=True)
    assert with_bg.shape == (2, 3, 4)
    torch.testing.assert_close(with_bg[:, 1:], counts)


def test_metric_class_aggregates_per_case_and_pooled():
    shape = (16, 16, 4)
    gt1 = box(box(np.zeros(shape, bool), slice(1, 3), slice(1, 3), slice(1, 2)), slice(8, 10), slice(8, 10),
              slice(1, 2))
    pred1 = box(np.zeros(shape, bool), slice(1, 3), slice(1, 3), slice(1, 2))  # 1 of 2 found
    gt2 = np.zeros(shape, bool)
    for k in range(4):
        box(gt2, slice(1 + 4 * k, 3 + 4 * k), slice(12, 14), slice(1, 3))
    pred2 = gt2.copy()  # 4 of 4 found
    metric = LesionWiseMetric(metric_name=("ltpr", "lfpr_isbi"), spacing=(1.0, 1.0, 1.0))
    metric(batch(pred1), batch(gt1))
    metric(batch(pred2), MetaTensor(batch(gt2)))
    ltpr, lfpr = metric.aggregate()
    assert ltpr.item() == pytest.approx((0.5 + 1.0) / 2) and lfpr.item() == 0.0
    ltpr_pooled, _ = metric.aggregate(pooled=True)
    assert ltpr_pooled.item() == pytest.approx(5 / 6)
    details = metric.get_details()
    assert details["gl"].flatten().tolist() == [2, 4] and details["tp"].flatten().tolist() == [1, 4]
    single = LesionWiseMetric(metric_name="ldice")
    single(batch(pred1), batch(gt1))
    assert single.aggregate().item() == pytest.approx(2 / 3)


def test_bad_inputs():
    g = batch(np.ones((6, 6, 4), bool))
    with pytest.raises(ValueError, match="connectivity"):
        compute_lesion_counts(g, g, connectivity=8)
    with pytest.raises(ValueError, match="connectivity"):
        compute_lesion_counts(g[..., 0], g[..., 0], connectivity=26)
    with pytest.raises(ValueError, match="overlap must be one of"):
        compute_lesion_counts(g, g, overlap="dice")
    with pytest.raises(ValueError, match="takes no threshold"):
        compute_lesion_counts(g, g, overlap_threshold=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        compute_lesion_counts(g, g, overlap="iou", overlap_threshold=1.5)
    with pytest.raises(ValueError, match="min_lesion_volume"):
        compute_lesion_counts(g, g, min_lesion_volume=-1)
    with pytest.raises(ValueError, match="binary"):
        compute_lesion_counts(g * 2, g)
    with pytest.raises(ValueError, match="same shape"):
        compute_lesion_counts(g, g[..., :3])
    with pytest.raises(ValueError, match="one value per spatial dimension"):
        compute_lesion_counts(g, g, spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match="metric_name"):
        LesionWiseMetric(metric_name="lfpr")
    with pytest.raises(ValueError, match="connectivity"):
        LesionWiseMetric(connectivity=10)
    with pytest.raises(ValueError, match="empty"):
        compute_lesion_wise(g, g, empty="zero")


def test_bounded_ldice_on_merges_and_splits():
    """NeRD's LDice leaves [0, 1] when a prediction merges lesions; the bounded LDice is (tp + tp_pred) / (gl + pl)."""
    gt = np.zeros((20, 20, 5), bool)
    pred = np.zeros_like(gt)
    box(gt, slice(2, 6), slice(2, 6), slice(1, 4))
    box(gt, slice(8, 12), slice(2, 6), slice(1, 4))
    box(pred, slice(3, 11), slice(3, 5), slice(2, 3))  # one prediction bridging both
    v = values(pred, gt)
    assert v["ldice"] == pytest.approx(4 / 3) and v["ldice_bounded"] == pytest.approx((2 + 1) / (2 + 1))
    # split: one lesion found by two fragments, plus a missed lesion -> gl 2, pl 2, tp 1, tp_pred 2
    pred = np.zeros_like(gt)
    box(pred, slice(2, 3), slice(2, 6), slice(1, 4))
    box(pred, slice(5, 6), slice(2, 6), slice(1, 4))
    box(gt, slice(15, 18), slice(15, 18), slice(1, 3))
    gt[8:12] = False
    v = values(pred, gt)
    assert (v["gl"], v["pl"], v["tp"], v["tp_pred"]) == (2, 2, 1, 2)
    assert v["ldice"] == pytest.approx(2 / 4) and v["ldice_bounded"] == pytest.approx(3 / 4)
    # one-to-one matching: the bounded LDice is NeRD's
    v = values(gt, gt)
    assert v["ldice_bounded"] == v["ldice"] == 1.0
    empty = np.zeros_like(gt)
    assert values(empty, empty)["ldice_bounded"] == 1.0
    assert math.isnan(values(empty, empty, empty="nan")["ldice_bounded"])
    assert values(empty, gt)["ldice_bounded"] == 0.0


def test_bounded_metrics_stay_in_unit_interval_on_random_cases():
    """Property test (fixed seed): random blob masks produce merges and splits; the published LDice / LPPV leave
    [0, 1] on some cases, every metric of BOUNDED_LESION_METRICS never does (per case and pooled)."""
    from monai_implicit.metrics import BOUNDED_LESION_METRICS

    rng = np.random.default_rng(2024)
    preds, gts = [], []
    for _ in range(60):
        shape = (24, 24, 6)
        gts.append(ndimage.binary_opening(rng.random(shape) < 0.25) if rng.random() < 0.5 else rng.random(shape) < 0.05)
        preds.append(ndimage.binary_dilation(gts[-1], iterations=int(rng.integers(0, 3))) & (rng.random(shape) < 0.9)
                     | (rng.random(shape) < 0.02))
    preds.append(np.zeros((24, 24, 6), bool))  # empty cases too
    gts.append(np.zeros((24, 24, 6), bool))
    result = compute_lesion_wise(batch(*preds), batch(*gts), connectivity=26)
    assert (result["ldice"] > 1).any() and (result["lppv"] > 1).any()  # the published formulas, unclipped
    for name in BOUNDED_LESION_METRICS:
        assert ((result[name] >= 0) & (result[name] <= 1)).all(), name
    metric = LesionWiseMetric(metric_name=list(BOUNDED_LESION_METRICS), connectivity=26)
    metric(batch(*preds), batch(*gts))
    for pooled in (False, True):
        for value in metric.aggregate(pooled=pooled):
            assert 0.0 <= value.item() <= 1.0
    assert LesionWiseMetric().metric_name == "ldice_bounded"


def test_unbatched_mask_is_refused():
    """A (X, Y, Z) mask has the axes of a batch of 1D masks (B, C, Z): refused, not counted as X cases."""
    gt = np.zeros((12, 10, 6), bool)
    box(gt, slice(2, 5), slice(2, 5), slice(1, 3))
    with pytest.raises(ValueError, match=r"batch-first .* got shape \(12, 10, 6\) -- an unbatched mask"):
        compute_lesion_wise(torch.from_numpy(gt), torch.from_numpy(gt))
    with pytest.raises(ValueError, match=r"\(B, C, X, Y, Z\) with 3 spatial"):
        compute_lesion_counts(batch(gt)[0], batch(gt)[0], spatial_dims=3)  # (1, X, Y, Z): no batch axis
    with pytest.raises(ValueError, match="batch-first"):
        LesionWiseMetric(spatial_dims=3)(torch.from_numpy(gt)[None], torch.from_numpy(gt)[None])
    assert compute_lesion_counts(batch(gt), batch(gt), spatial_dims=3)[0, 0].tolist() == [1, 1, 1, 1]
    line = torch.zeros(2, 1, 30)
    line[:, :, 3:6] = 1
    assert compute_lesion_counts(line, line, spatial_dims=1)[:, 0, 0].tolist() == [1, 1]  # 1D only on request
