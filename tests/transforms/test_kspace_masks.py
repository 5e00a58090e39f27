"""Undersampling masks: Poisson-disc acceleration, calibration, density, crop, determinism, MONAI line masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.apps.reconstruction.transforms.array import EquispacedKspaceMask, RandomKspaceMask
from scipy.spatial import cKDTree

from monai_implicit.transforms.kspace.masks import (
    cartesian_line_mask,
    clear_mask_cache,
    poisson_disk_mask,
    undersampling_mask,
)


def _box(n: int, c: int) -> slice:
    # calibration lines centred on DC (index n // 2) with DC at position c // 2 of the box
    return slice(n // 2 - c // 2, n // 2 - c // 2 + c)


@pytest.mark.parametrize(
    "shape, accel, calib",
    [((64, 64), 4.0, 8), ((48, 80), 5.0, (6, 10)), ((63, 45), 3.0, 5), ((96, 96), 8.0, 12), ((256, 256), 8.0, 24)],
)
def test_poisson_acceleration_and_calibration(shape, accel, calib):
    mask = poisson_disk_mask(shape, accel, calib=calib, seed=3)
    assert mask.shape == shape and mask.dtype == bool
    achieved = mask.size / np.count_nonzero(mask)
    assert abs(achieved - accel) < 0.1
    cy, cx = (calib, calib) if isinstance(calib, int) else calib
    assert mask[_box(shape[0], cy), _box(shape[1], cx)].all()


def test_poisson_tolerance_argument_is_honoured():
    mask = poisson_disk_mask((64, 64), 4.0, calib=8, seed=0, tol=0.02)
    assert abs(mask.size / mask.sum() - 4.0) < 0.02


def test_poisson_density_decreases_with_radius():
    ny, nx = 128, 128
    mask = poisson_disk_mask((ny, nx), 6.0, calib=0, seed=1, crop_corner=True)
    y, x = np.mgrid[:ny, :nx]
    r = np.hypot((y - ny // 2) / (ny / 2), (x - nx // 2) / (nx / 2))
    edges = [0.1, 0.35, 0.6, 0.85, 1.0]
    density = [mask[(r >= a) & (r < b)].mean() for a, b in zip(edges[:-1], edges[1:])]
    assert all(d0 > d1 for d0, d1 in zip(density[:-1], density[1:])), density
    assert density[0] > 2 * density[-1]


def test_poisson_minimum_distance_grows_outwards():
    # Poisson-disc property: nearest-neighbour distances between samples grow away from the centre
    ny = nx = 128
    mask = poisson_disk_mask((ny, nx), 10.0, calib=0, seed=2)
    pts = np.argwhere(mask).astype(float)
    nn = cKDTree(pts).query(pts, k=2)[0][:, 1]
    r = np.hypot(pts[:, 0] - ny // 2, pts[:, 1] - nx // 2) / (ny / 2)
    assert np.median(nn[r > 0.7]) > 1.5 * np.median(nn[r < 0.3])
    # and no two samples are adjacent far out, where the exclusion radius exceeds 2 pixels
    assert nn[r > 0.8].min() >= 2.0


def test_poisson_nothing_outside_crop():
    ny, nx = 64, 96
    mask = poisson_disk_mask((ny, nx), 3.0, calib=0, seed=0, crop_corner=True)
    y, x = np.mgrid[:ny, :nx]
    outside = ((y - ny // 2) / (ny / 2)) ** 2 + ((x - nx // 2) / (nx / 2)) ** 2 >= 1
    assert outside.sum() > 0 and not mask[outside].any()
    # without cropping, samples do reach the corners
    full = poisson_disk_mask((ny, nx), 3.0, calib=0, seed=0, crop_corner=False)
    assert full[outside].any()


def test_poisson_with_calibration_keeps_corners_empty():
    mask = poisson_disk_mask((64, 64), 4.0, calib=8, seed=0)
    for corner in (mask[:6, :6], mask[:6, -6:], mask[-6:, :6], mask[-6:, -6:]):
        assert not corner.any()


def test_poisson_deterministic_and_global_rng_untouched():
    np.random.seed(123)
    torch.manual_seed(123)
    np_state = np.random.get_state()[1].copy()
    torch_state = torch.get_rng_state().clone()
    clear_mask_cache()
    a = poisson_disk_mask((64, 64), 4.0, calib=8, seed=7)
    clear_mask_cache()
    b = poisson_disk_mask((64, 64), 4.0, calib=8, seed=7)
    c = poisson_disk_mask((64, 64), 4.0, calib=8, seed=8)
    d = poisson_disk_mask((64, 64), 4.0, calib=8, seed=None)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    assert abs(d.size / d.sum() - 4.0) < 0.1
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_poisson_cache_returns_copies():
    a = poisson_disk_mask((64, 64), 4.0, calib=8, seed=11)
    ref = a.copy()
    a[:] = False
    b = poisson_disk_mask((64, 64), 4.0, calib=8, seed=11)
    np.testing.assert_array_equal(b, ref)
    assert b.flags.writeable


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shape": (64, 64), "accel": 1.0}, "accel"),
        ({"shape": (64, 64), "accel": 0.5}, "accel"),
        ({"shape": (64, 64), "accel": float("nan")}, "accel"),
        ({"shape": (64, 64, 8), "accel": 4.0}, "2 entries"),
        ({"shape": (64,), "accel": 4.0}, "2 entries"),
        ({"shape": (64, 64), "accel": 4.0, "calib": 80}, "larger than"),
        ({"shape": (64, 64), "accel": 4.0, "calib": -1}, "non-negative"),
        ({"shape": (64, 64), "accel": 4.0, "tol": 0.0}, "tol"),
        ({"shape": (64, 64), "accel": 4.0, "max_iter": 0}, "max_iter"),
        # calibration box alone (1024 samples) exceeds the budget of 64*64/8 = 512
        ({"shape": (64, 64), "accel": 8.0, "calib": 32}, "calibration box"),
        # every allowed location inside the crop ellipse still gives accel ~1.27 > 1.1
        ({"shape": (64, 64), "accel": 1.1, "calib": 0}, "crop_corner"),
        # no integer number of samples of a 16x16 grid gives accel 60 +- 0.1
        ({"shape": (16, 16), "accel": 60.0, "calib": 0}, "whole number"),
    ],
)
def test_poisson_bad_or_impossible_requests(kwargs, match):
    with pytest.raises(ValueError, match=match):
        poisson_disk_mask(seed=0, **kwargs)


def test_poisson_non_convergence_raises_instead_of_looping():
    with pytest.raises(ValueError, match="did not reach"):
        poisson_disk_mask((64, 64), 4.0, calib=8, seed=0, tol=1e-6, max_iter=4)


def test_poisson_bad_types():
    with pytest.raises(TypeError):
        poisson_disk_mask((64, 64), "8")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        poisson_disk_mask((64, 64), 4.0, calib=(4, 4, 4))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        poisson_disk_mask((64, 64), 4.0, seed=-1)


@pytest.mark.parametrize("kind, cls", [("random_lines", RandomKspaceMask), ("equispaced_lines", EquispacedKspaceMask)])
def test_line_masks_match_monai(kind, cls):
    n, accel, calib, seed = 96, 4.0, 8, 5
    ours = cartesian_line_mask(kind, n, accel, calib, seed)
    ref = cls(center_fractions=[calib / n], accelerations=[accel], spatial_dims=2, is_complex=False)
    ref.set_random_state(seed=seed)
    ref(torch.zeros(1, 32, n))
    np.testing.assert_array_equal(ours, ref.mask.reshape(-1).numpy() > 0)
    assert ours[_box(n, calib)].all()


@pytest.mark.parametrize("kind", ["random_lines", "equispaced_lines"])
def test_line_masks_are_never_empty(kind):
    """Without calibration lines MONAI's draw can select no line (18-130 of 300 seeds on these grids): the DC line is
    then acquired, and a mask MONAI draws non-empty is returned unchanged."""
    empty_before = 0
    for n, accel in ((2, 1.5), (3, 2.5), (4, 3.0), (6, 8.0), (8, 6.0), (16, 12.0)):
        for seed in range(200):
            mask = cartesian_line_mask(kind, n, accel, calib=0, seed=seed)
            ref = (RandomKspaceMask if kind == "random_lines" else EquispacedKspaceMask)(
                center_fractions=[0.0], accelerations=[accel], spatial_dims=1, is_complex=False)
            ref.set_random_state(seed=seed)
            ref(np.zeros((1, n), np.float32))
            drawn = np.asarray(ref.mask).reshape(-1) > 0
            assert mask.any(), (n, accel, seed)
            if drawn.any():
                np.testing.assert_array_equal(mask, drawn)
            else:
                empty_before += 1
                assert mask.sum() == 1 and mask[n // 2]
    assert empty_before > 0  # the grids above do hit the empty draw
    assert undersampling_mask(kind, (6, 4), 8.0, calib=0, seed=0).any()


def test_equispaced_lines_acceleration():
    mask = cartesian_line_mask("equispaced_lines", 256, 4.0, 16, seed=0)
    assert abs(mask.size / mask.sum() - 4.0) < 0.25


def test_line_mask_bad_requests():
    with pytest.raises(ValueError, match="alone"):
        cartesian_line_mask("random_lines", 64, 8.0, 10, seed=0)
    with pytest.raises(ValueError, match="kind"):
        cartesian_line_mask("radial", 64, 4.0, 4, seed=0)
    with pytest.raises(ValueError, match="accel"):
        cartesian_line_mask("equispaced_lines", 64, 1.0, 4, seed=0)


def test_undersampling_mask_3d_readout_fully_sampled():
    shape = (10, 48, 40)
    for readout in (0, 2, -1):
        mask = undersampling_mask("poisson", shape, 4.0, calib=6, seed=0, readout_axis=readout)
        ro = readout % 3
        assert mask.shape == shape
        # identical along the readout axis, and equal to the 2D mask of the phase-encode plane
        first = np.take(mask, 0, axis=ro)
        assert (mask == np.expand_dims(first, ro)).all()
        pe = tuple(s for a, s in enumerate(shape) if a != ro)
        np.testing.assert_array_equal(first, poisson_disk_mask(pe, 4.0, calib=6, seed=0))


def test_undersampling_mask_lines_2d_and_3d():
    m2 = undersampling_mask("random_lines", (32, 64), 4.0, calib=8, seed=1, readout_axis=0)
    assert (m2 == m2[:1]).all()  # readout (axis 0) fully sampled, lines along axis 1
    np.testing.assert_array_equal(m2[0], cartesian_line_mask("random_lines", 64, 4.0, 8, 1))
    m3 = undersampling_mask("equispaced_lines", (8, 16, 32), 4.0, calib=(4, 4), seed=1, readout_axis=1)
    assert (m3 == m3[:1, :1, :]).all()  # only the last phase-encode axis (2) is undersampled


def test_undersampling_mask_2d_poisson_matches_function():
    np.testing.assert_array_equal(
        undersampling_mask("poisson", (40, 48), 3.0, calib=4, seed=2), poisson_disk_mask((40, 48), 3.0, 4, seed=2)
    )


@pytest.mark.parametrize(
    "args, err",
    [
        (("poisson", (32, 32, 32, 4), 4.0), ValueError),
        (("poisson", (32,), 4.0), ValueError),
        (("spiral", (32, 32), 4.0), ValueError),
        (("poisson", (32, 32), 4.0, 4, 0, 3), ValueError),
    ],
)
def test_undersampling_mask_bad_input(args, err):
    with pytest.raises(err):
        undersampling_mask(*args)
