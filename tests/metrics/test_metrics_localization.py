"""Localisation F1 for 1D signals: hand cases and an independent maximum bipartite matching."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from monai_implicit.metrics import (
    LocalizationF1Metric,
    compute_localization_counts,
    compute_localization_f1,
    find_signal_peaks,
    match_positions,
)


def spikes(length, positions):
    y = torch.zeros(1, 1, length)
    y[0, 0, list(positions)] = 1
    return y


def signal(length, peaks):
    x = torch.zeros(1, 1, length)
    for pos, height in peaks.items():
        x[0, 0, pos] = height
    return x


def test_tolerance_is_inclusive_and_threshold_applies():
    y = spikes(100, [20, 60])
    pred = signal(100, {24: 0.9, 65: 0.9, 80: 0.3})
    r = compute_localization_f1(pred, y, threshold=0.5, tolerance=4)
    # 24 is exactly 4 away (match), 65 is 5 away (no match), 80 is below the threshold (not a detection)
    assert (r["tp"].item(), r["n_detected"].item(), r["n_true"].item()) == (1, 2, 2)
    assert r["precision"].item() == 0.5 and r["recall"].item() == 0.5 and r["f1"].item() == 0.5
    r = compute_localization_f1(pred, y, threshold=0.2, tolerance=5)
    assert (r["tp"].item(), r["n_detected"].item()) == (2, 3)
    assert r["f1"].item() == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))


def test_one_to_one_matching_beats_greedy():
    # greedy nearest-first pairs 14 with 15 and then finds nothing for 19; the optimum matches both
    i_det, i_true = match_positions(np.array([14, 19]), np.array([10, 15]), tolerance=4)
    assert sorted(zip(i_det.tolist(), i_true.tolist())) == [(0, 0), (1, 1)]
    # two detections next to one bubble: one true positive
    r = compute_localization_f1(signal(50, {10: 1.0, 13: 1.0}), spikes(50, [11]), tolerance=3)
    assert (r["tp"].item(), r["n_detected"].item()) == (1, 2)


def test_matching_size_equals_maximum_bipartite_matching():
    rng = np.random.default_rng(0)
    for _ in range(30):
        det = rng.choice(200, size=rng.integers(0, 25), replace=False)
        true = rng.choice(200, size=rng.integers(0, 25), replace=False)
        tol = int(rng.integers(0, 8))
        i_det, i_true = match_positions(det, true, tol)
        assert len(set(i_det.tolist())) == i_det.size and len(set(i_true.tolist())) == i_true.size
        assert np.all(np.abs(det[i_det] - true[i_true]) <= tol)
        if det.size and true.size:
            adjacency = csr_matrix((np.abs(det[:, None] - true[None, :]) <= tol).astype(np.int8))
            expected = int((maximum_bipartite_matching(adjacency, perm_type="column") >= 0).sum())
        else:
            expected = 0
        assert i_det.size == expected


def test_peaks_at_the_edges_and_plateaus():
    x = np.array([0.9, 0.1, 0.0, 0.7, 0.7, 0.7, 0.0, 0.2, 0.8])
    np.testing.assert_array_equal(find_signal_peaks(x, threshold=0.5), [0, 4, 8])
    np.testing.assert_array_equal(find_signal_peaks(x, threshold=0.75), [0, 8])


def test_empty_conventions():
    none_true = torch.zeros(1, 1, 30)
    none_pred = torch.zeros(1, 1, 30)
    r = compute_localization_f1(none_pred, none_true)
    assert (r["precision"].item(), r["recall"].item(), r["f1"].item()) == (1.0, 1.0, 1.0)
    r = compute_localization_f1(none_pred, spikes(30, [5]))
    assert (r["precision"].item(), r["recall"].item(), r["f1"].item()) == (1.0, 0.0, 0.0)
    r = compute_localization_f1(signal(30, {5: 1.0}), none_true)
    assert (r["precision"].item(), r["recall"].item(), r["f1"].item()) == (0.0, 1.0, 0.0)
    r = compute_localization_f1(none_pred, spikes(30, [5]), empty="nan")
    assert math.isnan(r["precision"].item()) and r["recall"].item() == 0.0 and math.isnan(r["f1"].item())


def test_metric_class_batches_channels_and_pooling():
    y = torch.zeros(2, 2, 40)
    y[0, 0, [5, 20]] = 1
    y[1, 0, [10]] = 1
    y[0, 1, [30]] = 1
    pred = torch.zeros(2, 2, 40)
    pred[0, 0, 6] = 0.9  # 1 of 2 found
    pred[1, 0, 10] = 0.9  # 1 of 1 found
    pred[0, 1, 30] = 0.9
    pred[1, 1, 15] = 0.9  # false positive on an empty channel
    counts = compute_localization_counts(pred, y)
    assert counts.shape == (2, 2, 3)
    metric = LocalizationF1Metric(metric_name=["recall", "precision"])
    metric(pred, y)
    recall, precision = metric.aggregate()
    assert recall.item() == pytest.approx((0.5 + 1 + 1 + 1) / 4)
    assert precision.item() == pytest.approx((1 + 1 + 1 + 0) / 4)
    recall_pooled, precision_pooled = metric.aggregate(pooled=True)
    assert recall_pooled.item() == pytest.approx(3 / 4) and precision_pooled.item() == pytest.approx(3 / 4)
    per_signal = metric.aggregate(reduction="none")[0]
    assert per_signal.shape == (2, 2)


def test_bad_inputs():
    y = spikes(20, [3])
    with pytest.raises(ValueError, match="1D signals"):
        compute_localization_f1(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="same shape"):
        compute_localization_f1(torch.zeros(1, 1, 19), y)
    with pytest.raises(ValueError, match="binary spike train"):
        compute_localization_f1(torch.zeros(1, 1, 20), y * 0.5)
    with pytest.raises(ValueError, match="tolerance"):
        compute_localization_f1(torch.zeros(1, 1, 20), y, tolerance=-1)
    with pytest.raises(ValueError, match="NaN"):
        compute_localization_f1(torch.full((1, 1, 20), float("nan")), y)
    with pytest.raises(ValueError, match="metric_name"):
        LocalizationF1Metric(metric_name="accuracy")
