"""Surface distances (HD at a percentile, ASD) against MONAI, a distance-transform computation and hand cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.metrics import (
    HausdorffDistanceMetric,
)
from monai.metrics import (
    compute_average_surface_distance as monai_asd,
)
from monai.metrics import (
    compute_hausdorff_distance as monai_hd,
)
from scipy import ndimage

from monai_implicit.metrics import (
    AverageSurfaceDistanceMetric,
    HausdorffPercentileMetric,
    compute_average_surface_distance,
    compute_hausdorff_percentile,
    surface_distances,
    surface_voxels,
)
from monai_implicit.metrics.foreground import foreground_index

SPACINGS = {2: (0.7, 1.9), 3: (0.8, 1.1, 3.0)}
SHAPES = {2: (40, 33), 3: (26, 22, 14)}


def random_mask(shape, rng, fraction=0.15, sigma=2.0):
    """Smooth random blobs, several components, some touching the image border."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return field > np.quantile(field, 1 - fraction)


def edt_directed(a: np.ndarray, b: np.ndarray, spacing) -> np.ndarray:
    """Independent reference: distances from the edge voxels of a to the edge of b via an exact EDT."""
    edge_a = a ^ ndimage.binary_erosion(a)
    edge_b = b ^ ndimage.binary_erosion(b)
    dt = ndimage.distance_transform_edt(~edge_b, sampling=spacing)
    return dt[edge_a]


def batch(*masks):
    return torch.from_numpy(np.stack(masks)[:, None].astype(np.float32))


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("percentile", [95.0, None, 50.0])
@pytest.mark.parametrize("directed", [False, True])
def test_matches_monai_on_random_cases(spatial_dims, percentile, directed):
    rng = np.random.default_rng(int(spatial_dims * 10 + (percentile or 0) + directed))
    shape, spacing = SHAPES[spatial_dims], SPACINGS[spatial_dims]
    preds = [random_mask(shape, rng) for _ in range(3)]
    gts = [random_mask(shape, rng) for _ in range(3)]
    yp, yt = batch(*preds), batch(*gts)
    ours = compute_hausdorff_percentile(yp, yt, percentile=percentile, directed=directed, spacing=spacing)
    ref = monai_hd(yp, yt, include_background=True, percentile=percentile, directed=directed, spacing=spacing)
    assert ours.shape == (3, 1)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-4, rtol=0)


@pytest.mark.parametrize("include_background", [False, True])
def test_multiclass_one_hot_and_label_map_match_monai(include_background):
    rng = np.random.default_rng(7)
    shape, spacing = SHAPES[3], SPACINGS[3]
    labels_p = np.zeros((2, *shape), np.int64)
    labels_t = np.zeros((2, *shape), np.int64)
    for c in (1, 2):
        for b in range(2):
            labels_p[b][random_mask(shape, rng, 0.1)] = c
            labels_t[b][random_mask(shape, rng, 0.1)] = c
    onehot_p = torch.nn.functional.one_hot(torch.from_numpy(labels_p), 3).movedim(-1, 1).float()
    onehot_t = torch.nn.functional.one_hot(torch.from_numpy(labels_t), 3).movedim(-1, 1).float()
    ref = monai_hd(onehot_p, onehot_t, include_background=include_background, percentile=95, spacing=spacing)
    ours = compute_hausdorff_percentile(onehot_p, onehot_t, include_background=include_background, spacing=spacing)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-4)
    from_labels = compute_hausdorff_percentile(
        torch.from_numpy(labels_p)[:, None], torch.from_numpy(labels_t)[:, None], include_background=include_background,
        spacing=spacing, num_classes=3,
    )
    np.testing.assert_allclose(from_labels.numpy(), ref.numpy(), atol=1e-4)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_pooled_and_mean_reductions_against_distance_transform(spatial_dims):
    rng = np.random.default_rng(3 + spatial_dims)
    shape, spacing = SHAPES[spatial_dims], SPACINGS[spatial_dims]
    p, g = random_mask(shape, rng), random_mask(shape, rng)
    d_pg, d_gp = edt_directed(p, g, spacing), edt_directed(g, p, spacing)
    yp, yt = batch(p), batch(g)
    pooled = compute_hausdorff_percentile(yp, yt, reduction="pooled", spacing=spacing).item()
    mean = compute_hausdorff_percentile(yp, yt, reduction="mean", spacing=spacing).item()
    mx = compute_hausdorff_percentile(yp, yt, reduction="max", spacing=spacing).item()
    assert pooled == pytest.approx(np.percentile(np.concatenate([d_pg, d_gp]), 95), abs=1e-4)
    assert mean == pytest.approx(0.5 * (np.percentile(d_pg, 95) + np.percentile(d_gp, 95)), abs=1e-4)
    assert mx == pytest.approx(max(np.percentile(d_pg, 95), np.percentile(d_gp, 95)), abs=1e-4)
    asd_mean = compute_average_surface_distance(yp, yt, reduction="mean", spacing=spacing).item()
    asd_max = compute_average_surface_distance(yp, yt, reduction="max", spacing=spacing).item()
    assert asd_mean == pytest.approx(0.5 * (d_pg.mean() + d_gp.mean()), abs=1e-4)
    assert asd_max == pytest.approx(max(d_pg.mean(), d_gp.mean()), abs=1e-4)


def test_pooled_matches_medpy_when_installed():
    binary = pytest.importorskip("medpy.metric.binary")
    rng = np.random.default_rng(11)
    p, g = random_mask(SHAPES[3], rng), random_mask(SHAPES[3], rng)
    ours = compute_hausdorff_percentile(batch(p), batch(g), reduction="pooled", spacing=SPACINGS[3]).item()
    assert ours == pytest.approx(binary.hd95(p, g, voxelspacing=SPACINGS[3]), abs=1e-4)
    # medpy's assd pools both directions (MONAI's symmetric ASD), our default
    assd = compute_average_surface_distance(batch(p), batch(g), spacing=SPACINGS[3]).item()
    assert assd == pytest.approx(binary.assd(p, g, voxelspacing=SPACINGS[3]), abs=1e-4)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("directed", [False, True])
def test_asd_matches_monai(spatial_dims, directed):
    rng = np.random.default_rng(20 + spatial_dims)
    shape, spacing = SHAPES[spatial_dims], SPACINGS[spatial_dims]
    yp = batch(random_mask(shape, rng), random_mask(shape, rng))
    yt = batch(random_mask(shape, rng), random_mask(shape, rng))
    ref = monai_asd(yp, yt, include_background=True, symmetric=not directed, spacing=spacing)
    ours = compute_average_surface_distance(yp, yt, directed=directed, spacing=spacing)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-4)


def test_hand_built_two_points():
    p = np.zeros((8, 9, 6), bool)
    g = np.zeros((8, 9, 6), bool)
    p[2, 3, 4] = True
    g[5, 7, 4] = True
    # (3 * 1.0)^2 + (4 * 1.0)^2 = 25, z difference 0
    assert compute_hausdorff_percentile(batch(p), batch(g), spacing=(1.0, 1.0, 2.0)).item() == pytest.approx(5.0)
    g[5, 7, 4] = False
    g[2, 3, 1] = True  # 3 slices apart at 2 mm
    assert compute_hausdorff_percentile(batch(p), batch(g), spacing=(1.0, 1.0, 2.0)).item() == pytest.approx(6.0)
    d_pg, d_gp = surface_distances(p, g, spacing=(1.0, 1.0, 2.0))
    np.testing.assert_allclose(d_pg, [6.0])
    np.testing.assert_allclose(d_gp, [6.0])


def test_surface_voxels_match_binary_erosion_edges():
    rng = np.random.default_rng(5)
    for shape in [(31,), (17, 23), (12, 15, 9)]:
        mask = random_mask(shape, rng, 0.4, sigma=1.0)
        flat = mask.ravel()
        fg = np.flatnonzero(flat)
        ours = surface_voxels(fg, mask.shape, lambda i, f=flat: f[i])
        expected = np.flatnonzero(mask ^ ndimage.binary_erosion(mask))
        np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.uint8, np.bool_])
def test_foreground_index_equals_flatnonzero(dtype):
    rng = np.random.default_rng(1)
    a = (rng.random(1024 * 5 + 37) < 0.01).astype(dtype)
    if np.issubdtype(dtype, np.floating):
        a[100:2000] = -0.0  # non-zero bytes but zero values: a block flagged occupied must yield nothing
    np.testing.assert_array_equal(foreground_index(a), np.flatnonzero(a))
    np.testing.assert_array_equal(foreground_index(np.zeros(7, dtype)), np.zeros(0))


def test_empty_policies():
    shape, spacing = (20, 10, 5), (0.5, 2.0, 3.0)
    g = np.zeros(shape, bool)
    g[3:6, 3:6, 1:3] = True
    empty = np.zeros(shape, bool)
    diagonal = math.sqrt((20 * 0.5) ** 2 + (10 * 2.0) ** 2 + (5 * 3.0) ** 2)
    # prediction empty, lesion present: a miss counts as the image diagonal by default
    assert compute_hausdorff_percentile(batch(empty), batch(g), spacing=spacing).item() == pytest.approx(diagonal)
    assert compute_hausdorff_percentile(batch(g), batch(empty), spacing=spacing).item() == pytest.approx(diagonal)
    assert compute_average_surface_distance(batch(empty), batch(g), spacing=spacing).item() == pytest.approx(diagonal)
    assert math.isnan(compute_hausdorff_percentile(batch(empty), batch(g), spacing=spacing, empty="nan").item())
    assert compute_hausdorff_percentile(batch(empty), batch(g), empty=99.0).item() == 99.0
    assert math.isinf(compute_hausdorff_percentile(batch(empty), batch(g), empty=float("inf")).item())
    # both empty: 0 by default, NaN on request
    assert compute_hausdorff_percentile(batch(empty), batch(empty)).item() == 0.0
    assert math.isnan(compute_hausdorff_percentile(batch(empty), batch(empty), both_empty="nan").item())
    # the metric class keeps the miss in the mean, whereas MONAI's value is not finite for it
    metric = HausdorffPercentileMetric(spacing=spacing)
    metric(batch(g, empty), batch(g, g))
    assert metric.aggregate().item() == pytest.approx(diagonal / 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not np.isfinite(monai_hd(batch(empty), batch(g), include_background=True, percentile=95).item())


def test_metric_class_matches_monai_metric_and_reads_meta_spacing():
    rng = np.random.default_rng(9)
    shape, spacing = SHAPES[3], SPACINGS[3]
    ours, ref = HausdorffPercentileMetric(), HausdorffDistanceMetric(include_background=True, percentile=95)
    affine = torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64))
    for _ in range(2):
        yp = batch(random_mask(shape, rng), random_mask(shape, rng))
        yt = batch(random_mask(shape, rng), random_mask(shape, rng))
        ours(yp, MetaTensor(yt, affine=affine))  # spacing from the affine
        ref(yp, yt, spacing=spacing)
    assert ours.get_buffer().shape == (4, 1)
    np.testing.assert_allclose(ours.get_buffer().numpy(), ref.get_buffer().numpy(), atol=1e-4)
    assert ours.aggregate().item() == pytest.approx(ref.aggregate().item(), abs=1e-4)
    # list of channel-first tensors, explicit spacing in the call wins over the affine
    asd = AverageSurfaceDistanceMetric(spacing=(9.0, 9.0, 9.0))
    yp = [torch.from_numpy(random_mask(shape, rng)[None]).float() for _ in range(2)]
    yt = [torch.from_numpy(random_mask(shape, rng)[None]).float() for _ in range(2)]
    asd(yp, yt, spacing=spacing)
    expected = monai_asd(torch.stack(yp), torch.stack(yt), include_background=True, symmetric=True, spacing=spacing)
    np.testing.assert_allclose(asd.get_buffer().numpy(), expected.numpy(), atol=1e-4)


def test_bad_inputs():
    g = batch(np.ones((6, 6, 4), bool))
    with pytest.raises(ValueError, match="same shape"):
        compute_hausdorff_percentile(g, batch(np.ones((6, 6, 5), bool)))
    with pytest.raises(ValueError, match="binary"):
        compute_hausdorff_percentile(g * 0.5, g)
    with pytest.raises(ValueError, match="one value per spatial dimension"):
        compute_hausdorff_percentile(g, g, spacing=(1.0, 2.0))
    with pytest.raises(ValueError, match="positive"):
        compute_hausdorff_percentile(g, g, spacing=(1.0, -2.0, 1.0))
    with pytest.raises(ValueError, match="reduction"):
        compute_hausdorff_percentile(g, g, reduction="median")
    with pytest.raises(ValueError, match="distance_reduction"):
        HausdorffPercentileMetric(distance_reduction="sum")
    with pytest.raises(ValueError, match="empty"):
        compute_hausdorff_percentile(g, g, empty="zero")
    with pytest.raises(ValueError, match="both_empty"):
        compute_hausdorff_percentile(g, g, both_empty="diagonal")
    with pytest.raises(ValueError, match="percentile"):
        compute_hausdorff_percentile(g, g, percentile=101)
    with pytest.raises(ValueError, match="batch-first"):
        compute_hausdorff_percentile(torch.ones(6, 6), torch.ones(6, 6))
    with pytest.raises(ValueError, match="label map values"):
        compute_hausdorff_percentile(g * 3, g, num_classes=3)
    with pytest.raises(ValueError, match="one entry per case"):
        compute_hausdorff_percentile(g, g, spacing=[(1, 1, 1), (1, 1, 1)])
    with pytest.raises(TypeError):
        compute_hausdorff_percentile([g], g)
    with pytest.raises(ValueError, match="non-empty"):
        surface_distances(np.zeros((4, 4), bool), np.ones((4, 4), bool))


def test_unbatched_mask_is_refused():
    """An (X, Y, Z) mask used to be read as (B, C, Z) and scored near-zero distances; it is refused now."""
    rng = np.random.default_rng(11)
    p, g = random_mask(SHAPES[3], rng), random_mask(SHAPES[3], rng)
    for fn in (compute_hausdorff_percentile, compute_average_surface_distance):
        with pytest.raises(ValueError, match=r"got shape \(26, 22, 14\) -- an unbatched mask\? add the batch"):
            fn(torch.from_numpy(p).float(), torch.from_numpy(g).float())
        with pytest.raises(ValueError, match=r"\(B, C, X, Y, Z\) with 3 spatial dimension"):
            fn(batch(p)[0], batch(g)[0], spatial_dims=3)  # channel-first but no batch axis
        expected = fn(batch(p), batch(g), spacing=SPACINGS[3])
        torch.testing.assert_close(fn(batch(p), batch(g), spacing=SPACINGS[3], spatial_dims=3), expected)
    for metric in (HausdorffPercentileMetric(spatial_dims=3), AverageSurfaceDistanceMetric(spatial_dims=3)):
        with pytest.raises(ValueError, match="batch-first"):
            metric(batch(p)[0], batch(g)[0])
        metric([batch(p)[0]], [batch(g)[0]])  # a list of channel-first cases is batched by MONAI: accepted
        assert metric.get_buffer().shape == (1, 1)
    # 1D masks need the explicit spatial_dims=1
    line_p, line_g = torch.zeros(1, 1, 40), torch.zeros(1, 1, 40)
    line_p[..., 5:9], line_g[..., 7:12] = 1, 1
    with pytest.raises(ValueError, match="at least 2 spatial"):
        compute_hausdorff_percentile(line_p, line_g)
    assert compute_hausdorff_percentile(line_p, line_g, percentile=None, spatial_dims=1).item() == 3.0
