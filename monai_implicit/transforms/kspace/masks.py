"""Undersampling masks for retrospective compressed-sensing MRI.

Implements the sampling patterns of the CS-MRI experiment of "Hyper-Convolutions via Implicit Kernels for Medical
Imaging" (Ma, Wang, Dalca, Sabuncu), Sec. 4.3: 8x Poisson-disk variable-density undersampling of 256x256 k-space,
and the 1D Cartesian line patterns a CS-MRI researcher compares against.

* :func:`poisson_disk_mask` -- 2D variable-density Poisson-disc mask with a fully sampled calibration box. The
  exclusion radius of a sample grows linearly with its normalised distance from the calibration box (the
  construction of ``sigpy.mri.poisson``); the slope is found by a bracketed, iteration-capped search so that the
  requested acceleration is met within ``tol``. Impossible requests and searches that do not converge raise
  ``ValueError`` instead of looping.
* :func:`cartesian_line_mask` -- random or equispaced phase-encode lines, built by MONAI's
  :class:`~monai.apps.reconstruction.transforms.array.RandomKspaceMask` and
  :class:`~monai.apps.reconstruction.transforms.array.EquispacedKspaceMask`.
* :func:`undersampling_mask` -- one entry point for every kind that also handles 3D volumes: the mask covers the
  two phase-encode axes and the readout axis (``readout_axis``) is fully sampled.
* :class:`MaskSpec` -- the arguments of :func:`undersampling_mask` but the grid and the seed, validated once; the
  undersampling transforms of :mod:`.undersample` take them as keywords.

All masks are boolean numpy arrays over the *centred* k-space grid of :func:`monai.data.fft_utils.fftn_centered`
(DC at index ``n // 2`` of every axis). Randomness comes from a local generator built from ``seed``; the global
numpy / torch random states are never touched.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from monai.apps.reconstruction.transforms.array import EquispacedKspaceMask, RandomKspaceMask

from monai_implicit.utils import check_number, check_option, check_positive_int

__all__ = [
    "MASK_KINDS",
    "poisson_disk_mask",
    "cartesian_line_mask",
    "undersampling_mask",
    "clear_mask_cache",
    "MaskSpec",
]

MASK_KINDS = ("poisson", "random_lines", "equispaced_lines")

# Seeds are drawn from [0, _MAX_SEED) when a caller asks for a fresh random mask (seed=None).
_MAX_SEED = 2**31 - 1


def _as_pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}.")
    if isinstance(value, (int, np.integer)):
        pair = (int(value), int(value))
    elif isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, (int, np.integer)) for v in value):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}.")
    if min(pair) < 0:
        raise ValueError(f"{name} must be non-negative, got {value!r}.")
    return pair


def _check_shape(shape: Sequence[int], ndim: int | tuple[int, ...], name: str = "shape") -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)) or not isinstance(shape, Sequence):
        raise TypeError(f"{name} must be a sequence of ints, got {shape!r}.")
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if len(shape) not in dims:
        raise ValueError(f"{name} must have {' or '.join(map(str, dims))} entries, got {len(shape)}: {tuple(shape)}.")
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 2 for s in shape):
        raise ValueError(f"{name} entries must be ints >= 2, got {tuple(shape)}.")
    return tuple(int(s) for s in shape)


def _check_accel(accel: float) -> float:
    if isinstance(accel, bool) or not isinstance(accel, (int, float, np.integer, np.floating)):
        raise TypeError(f"accel must be a number, got {type(accel).__name__}.")
    if not math.isfinite(accel) or accel <= 1:
        raise ValueError(f"accel must be a finite number > 1 (an undersampling factor), got {accel}.")
    return float(accel)


def _check_seed(seed: int | None) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be None or a non-negative int, got {seed!r}.")
    return int(seed)


def _centre_box(n: int, width: int) -> slice:
    """Indices of a centred box of ``width`` samples around DC (index ``n // 2``), as MONAI's line masks use."""
    start = (n - width + 1) // 2
    return slice(start, start + width)


# --------------------------------------------------------------------------------------------------------------------
# Poisson-disc sampling
# --------------------------------------------------------------------------------------------------------------------
class _PoissonDiscSampler:
    """Variable-density Poisson-disc sampling on the pixel lattice for one (shape, calib, crop, seed).

    A sample at pixel ``s`` forbids every pixel ``q`` with ``((q_x - s_x) / r_x(s))^2 + ((q_y - s_y) / r_y(s))^2 < 1``
    where ``r(s) = max(1, (1 + slope * rho(s)) * n / max(n_x, n_y))`` per axis and ``rho`` is the distance from the
    calibration box normalised to 1 at the image edge (sigpy's construction). Candidates are visited once each in
    a random order fixed by the seed (dart throwing over the lattice, i.e. the saturated limit of Bridson's
    algorithm, where every admissible location is tried): the result is a maximal Poisson-disc set. Reusing the
    same order for every slope makes the sample count a nearly monotone function of the slope, which keeps the
    acceleration search short. Each sample paints its exclusion ellipse into an occupancy grid, so testing a
    candidate is a single byte lookup.
    """

    _chunk = 1024

    def __init__(self, shape: tuple[int, int], calib: tuple[int, int], crop_corner: bool, seed: int | None):
        ny, nx = shape
        cy, cx = calib
        self.shape = shape
        y, x = np.mgrid[:ny, :nx]
        # distance outside the calibration box, per axis, normalised to 1 at the farthest edge
        dx = np.maximum(np.abs(x - nx // 2) - cx / 2.0, 0.0)
        dy = np.maximum(np.abs(y - ny // 2) - cy / 2.0, 0.0)
        dx /= max(dx.max(), 1e-12)
        dy /= max(dy.max(), 1e-12)
        rho = np.sqrt(dx**2 + dy**2)
        calib_mask = np.zeros(shape, dtype=bool)
        calib_mask[_centre_box(ny, cy), _centre_box(nx, cx)] = True
        allowed = rho < 1 if crop_corner else np.ones(shape, dtype=bool)
        self.calib_mask = calib_mask & allowed if crop_corner else calib_mask
        cand = allowed & ~calib_mask
        ys, xs = np.nonzero(cand)
        order = np.random.default_rng(seed).permutation(ys.size)
        self.ys, self.xs, self.rho = ys[order], xs[order], rho[ys, xs][order]
        self.n_calib = int(self.calib_mask.sum())
        self.n_candidates = int(ys.size)
        self.aspect = (ny / max(nx, ny), nx / max(nx, ny))

    def radii(self, slope: float) -> tuple[np.ndarray, np.ndarray]:
        scale = 1.0 + self.rho * slope
        return np.maximum(scale * self.aspect[0], 1.0), np.maximum(scale * self.aspect[1], 1.0)

    def expected_density(self, slope: float) -> float:
        """Sum over candidates of 1 / (exclusion area in pixels): proportional to the expected sample count."""
        ry, rx = self.radii(slope)
        return float(np.sum(1.0 / (ry * rx)))

    @staticmethod
    def _runs(ry: float, rx: float, row_stride: int) -> list[tuple[int, int, bytes]]:
        """Rows of the exclusion ellipse ``(dy / ry)^2 + (dx / rx)^2 < 1`` as (start, stop, ones) flat offsets."""
        ry, rx = max(ry, 1.0), max(rx, 1.0)
        runs = []
        for dy in range(-int(math.ceil(ry)) + 1, int(math.ceil(ry))):
            half = rx * math.sqrt(max(1.0 - (dy / ry) ** 2, 0.0))
            w = int(math.ceil(half)) - 1  # largest integer |dx| with |dx| < half
            if w >= 0:
                runs.append((dy * row_stride - w, dy * row_stride + w + 1, b"\x01" * (2 * w + 1)))
        return runs

    def sample(self, slope: float) -> np.ndarray:
        """Boolean (ny, nx) mask for one slope (calibration box included)."""
        ny, nx = self.shape
        # quantising the radius scale to 1/128 lets samples share exclusion stencils; the change of radius
        # (< 0.4 %) is far below what the acceleration tolerance can resolve
        keys = np.rint((1.0 + self.rho * slope) * 128.0).astype(np.int64)
        kmax = int(keys.max()) if keys.size else 128
        pad = int(math.ceil(kmax / 128.0)) + 1
        wp = nx + 2 * pad
        flat = (self.ys + pad) * wp + (self.xs + pad)
        occupied = bytearray((ny + 2 * pad) * wp)
        occupied_np = np.frombuffer(occupied, dtype=np.uint8)
        # an exclusion ellipse is convex, so each of its rows is one contiguous run of the flat occupancy buffer:
        # painting a sample is a handful of bytearray slice assignments (much cheaper than numpy slicing)
        stencils: dict[int, list[tuple[int, int, bytes]]] = {}
        aspect_y, aspect_x = self.aspect
        accepted = []
        for lo in range(0, flat.size, self._chunk):
            # most candidates are already excluded by the time they come up: drop those with one vectorised
            # lookup per chunk so the sequential loop only visits the survivors
            block = flat[lo : lo + self._chunk]
            free = occupied_np[block] == 0
            for idx, key in zip(block[free].tolist(), keys[lo : lo + self._chunk][free].tolist()):
                if occupied[idx]:
                    continue
                accepted.append(idx)
                runs = stencils.get(key)
                if runs is None:
                    runs = stencils[key] = self._runs(key / 128.0 * aspect_y, key / 128.0 * aspect_x, wp)
                for start, stop, ones in runs:
                    occupied[idx + start : idx + stop] = ones
        mask = self.calib_mask.copy()
        if accepted:
            rows, cols = np.divmod(np.asarray(accepted), wp)
            mask[rows - pad, cols - pad] = True
        return mask


def _solve_density(sampler: _PoissonDiscSampler, target: float, lo: float, hi: float) -> float:
    """Slope in (lo, hi) at which ``sampler.expected_density`` equals ``target`` (monotone decreasing)."""
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if sampler.expected_density(mid) > target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-9 * (1.0 + hi):
            break
    return 0.5 * (lo + hi)


@functools.lru_cache(maxsize=32)
def _poisson_disk_mask_cached(
    shape: tuple[int, int],
    accel: float,
    calib: tuple[int, int],
    crop_corner: bool,
    seed: int,
    tol: float,
    max_iter: int,
) -> np.ndarray:
    mask = _poisson_disk_mask(shape, accel, calib, crop_corner, seed, tol, max_iter)
    mask.flags.writeable = False
    return mask


def _poisson_disk_mask(
    shape: tuple[int, int],
    accel: float,
    calib: tuple[int, int],
    crop_corner: bool,
    seed: int | None,
    tol: float,
    max_iter: int,
) -> np.ndarray:
    ny, nx = shape
    total = ny * nx
    sampler = _PoissonDiscSampler(shape, calib, crop_corner, seed)
    target = total / accel
    n_min, n_max = total / (accel + tol), total / (accel - tol) if accel - tol > 0 else math.inf
    if sampler.n_calib >= n_max or sampler.n_calib + 1 > n_max:
        raise ValueError(
            f"Cannot reach accel={accel} with a {calib[0]}x{calib[1]} calibration box on a {ny}x{nx} grid: the box "
            f"alone holds {sampler.n_calib} samples (acceleration {total / max(sampler.n_calib, 1):.3g}); "
            "use a smaller calib or a lower accel."
        )
    if math.floor(n_min) + 1 >= n_max:  # the acceptable counts form the open interval (n_min, n_max)
        raise ValueError(
            f"No whole number of samples on a {ny}x{nx} grid gives an acceleration within tol={tol} of {accel}; "
            "increase tol."
        )
    most = sampler.n_calib + sampler.n_candidates
    if most < n_min:
        raise ValueError(
            f"Cannot reach accel={accel}: sampling every allowed location gives acceleration {total / most:.3g}"
            + (" (crop_corner=True removes the corners of k-space)" if crop_corner else "")
            + "; request a higher accel or set crop_corner=False."
        )

    def accel_of(m: np.ndarray) -> float:
        return total / float(m.sum())

    lo, hi = 0.0, float(max(nx, ny))
    hi_checked = False
    # count(slope) ~ n_calib + k * expected_density(slope); refit k after every evaluation (a model-based secant
    # step) and fall back to bisection whenever the proposal leaves the bracket or stalls.
    k = 0.7
    slope = _solve_density(sampler, (target - sampler.n_calib) / k, lo, hi)
    best = (math.inf, 0.0)
    for it in range(max_iter):
        mask = sampler.sample(slope)
        count = float(mask.sum())
        acc = accel_of(mask)
        if abs(acc - accel) < tol:
            return mask
        best = min(best, (abs(acc - accel), acc))
        if count > target and not hi_checked and slope > 0.25 * hi:
            # the search is heading for the sparsest pattern: make sure it can reach accel at all
            hi_checked = True
            mask_hi = sampler.sample(hi)
            if mask_hi.sum() > n_max:
                raise ValueError(
                    f"Cannot reach accel={accel} on a {ny}x{nx} grid: the sparsest variable-density pattern only "
                    f"reaches acceleration {accel_of(mask_hi):.3g}; use a smaller calib or a lower accel."
                )
            if mask_hi.sum() >= n_min:
                return mask_hi
        if count > target:
            lo = slope
        else:
            hi = slope
        if hi - lo <= 1e-10 * (1.0 + hi):
            break
        density = sampler.expected_density(slope)
        if density > 0 and count > sampler.n_calib and it % 3 != 2:
            k = (count - sampler.n_calib) / density
            proposal = _solve_density(sampler, (target - sampler.n_calib) / k, lo, hi)
            margin = 1e-3 * (hi - lo)
            slope = proposal if lo + margin < proposal < hi - margin else 0.5 * (lo + hi)
        else:
            slope = 0.5 * (lo + hi)
    raise ValueError(
        f"Poisson-disc search did not reach accel={accel} within tol={tol} after {max_iter} iterations "
        f"(closest: {best[1]:.4g}); increase tol or max_iter."
    )


def poisson_disk_mask(
    shape: Sequence[int],
    accel: float,
    calib: int | Sequence[int] = 24,
    crop_corner: bool = True,
    seed: int | None = None,
    tol: float = 0.1,
    max_iter: int = 30,
) -> np.ndarray:
    """Variable-density Poisson-disc undersampling mask ("Hyper-Convolutions via Implicit Kernels for Medical Imaging",
    Sec. 4.3).

    Samples keep a minimum distance that grows linearly with their normalised distance ``rho`` from a fully sampled
    central calibration box (``rho = 0`` on the box, 1 at the image edge along each axis), so the density falls
    off towards high frequencies. The slope of that growth is searched (bracketed, model-guided, at most
    ``max_iter`` mask evaluations) until the achieved acceleration ``prod(shape) / mask.sum()`` lies within
    ``tol`` of ``accel``. Masks for a given seed are cached (LRU, 32 entries): repeated calls with the same
    arguments cost a copy.

    Args:
        shape: ``(n_y, n_x)`` size of the (phase-encode) k-space plane; each entry >= 2.
        accel: requested acceleration factor, > 1 (8 in the paper).
        calib: calibration box size in samples, an int or ``(c_y, c_x)``; 0 disables it. Must fit in ``shape``.
        crop_corner: if True, nothing is sampled outside the ellipse ``rho < 1`` (k-space corners).
        seed: seed of the local random generator; ``None`` draws a fresh mask (not cached). The global numpy
            and torch random states are never used.
        tol: absolute tolerance on the achieved acceleration, > 0.
        max_iter: maximum number of masks evaluated by the search before giving up.

    Returns:
        boolean array of ``shape`` (True = sampled), centred: DC at ``(n_y // 2, n_x // 2)``.

    Raises:
        ValueError: invalid arguments, an impossible request (calibration box alone exceeds the sample budget, the
            densest or sparsest pattern cannot reach ``accel``), or no convergence within ``max_iter``.
    """
    shape_t = _check_shape(shape, 2)
    accel_f = _check_accel(accel)
    calib_t = _as_pair(calib, "calib")
    if calib_t[0] > shape_t[0] or calib_t[1] > shape_t[1]:
        raise ValueError(f"calib box {calib_t} is larger than the k-space grid {shape_t}.")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < accel_f:
        raise ValueError(f"tol must be a number in (0, accel), got {tol!r}.")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}.")
    seed_i = _check_seed(seed)
    if seed_i is None:
        return _poisson_disk_mask(shape_t, accel_f, calib_t, bool(crop_corner), None, float(tol), int(max_iter))
    return _poisson_disk_mask_cached(
        shape_t, accel_f, calib_t, bool(crop_corner), seed_i, float(tol), int(max_iter)
    ).copy()


def clear_mask_cache() -> None:
    """Empty the cache of seeded Poisson-disc masks."""
    _poisson_disk_mask_cached.cache_clear()


# --------------------------------------------------------------------------------------------------------------------
# Cartesian lines (MONAI)
# --------------------------------------------------------------------------------------------------------------------
def cartesian_line_mask(kind: str, n: int, accel: float, calib: int = 24, seed: int | None = None) -> np.ndarray:
    """1D Cartesian phase-encode line selection, built by MONAI's reconstruction masks.

    ``"random_lines"`` uses :class:`monai.apps.reconstruction.transforms.array.RandomKspaceMask` (lines drawn
    independently so the *expected* acceleration is ``accel``); ``"equispaced_lines"`` uses
    :class:`~monai.apps.reconstruction.transforms.array.EquispacedKspaceMask` (regular spacing with a random
    offset). Both keep the ``calib`` central lines; these are the 1D baselines of CS-MRI comparisons (at 8x, random
    lines give a zero-filled reconstruction several dB worse than a Poisson-disc mask).

    Args:
        kind: ``"random_lines"`` or ``"equispaced_lines"``.
        n: number of phase-encode lines (>= 2).
        accel: acceleration factor, > 1.
        calib: number of fully sampled central lines, ``0 <= calib`` and ``calib * accel < n``.
        seed: seed of the local random state (None: fresh randomness). Global random states are not touched.

    Returns:
        boolean array of shape ``(n,)``, True for acquired lines, centred (DC at ``n // 2``); never empty: when the
        draw selects no line (possible with ``calib=0``), the DC line is acquired.
    """
    kind = check_option(kind, ("random_lines", "equispaced_lines"), "kind")
    n = _check_shape((n,), 1, "n")[0]
    accel_f = _check_accel(accel)
    if isinstance(calib, bool) or not isinstance(calib, (int, np.integer)) or calib < 0:
        raise ValueError(f"calib must be a non-negative int (number of central lines), got {calib!r}.")
    if calib > n:
        raise ValueError(f"calib={calib} central lines is larger than the {n} available lines.")
    if calib * accel_f >= n:
        raise ValueError(
            f"calib={calib} central lines alone reach acceleration {n / max(calib, 1):.3g} <= accel={accel_f}; "
            "use fewer calibration lines or a lower accel."
        )
    seed_i = _check_seed(seed)
    cls = RandomKspaceMask if kind == "random_lines" else EquispacedKspaceMask
    # MONAI builds the mask inside __call__ from a k-space tensor; a zero (1, n) real signal makes it build
    # exactly the 1D line mask (stored in .mask) at negligible cost.
    maker = cls(center_fractions=[calib / n], accelerations=[accel_f], spatial_dims=1, is_complex=False)
    maker.set_random_state(seed=seed_i)
    maker(np.zeros((1, n), dtype=np.float32))
    mask = np.asarray(maker.mask).reshape(-1) > 0
    if not mask.any():
        # without calibration lines MONAI's draw can select nothing (each random line is kept independently; an
        # equispaced offset can fall past the last line): an empty mask would zero all of k-space, so the DC line
        # (index n // 2), the one every acquisition measures, is acquired instead
        mask[n // 2] = True
    return mask


# --------------------------------------------------------------------------------------------------------------------
# One interface, 2D and 3D
# --------------------------------------------------------------------------------------------------------------------
def undersampling_mask(
    kind: str,
    spatial_shape: Sequence[int],
    accel: float,
    calib: int | Sequence[int] = 24,
    seed: int | None = None,
    readout_axis: int = 0,
    crop_corner: bool = True,
    tol: float = 0.1,
    max_iter: int = 30,
) -> np.ndarray:
    """Undersampling mask of any supported kind over a 2D or 3D centred k-space grid.

    * 2D ``"poisson"``: a 2D Poisson-disc mask over both axes (the Hyper-Convolution paper, Sec. 4.3, undersamples
      2D slices this way);
      ``readout_axis`` is ignored.
    * 3D ``"poisson"``: the mask covers the two phase-encode axes (all axes but ``readout_axis``) and is repeated
      along the fully sampled readout axis.
    * ``"random_lines"`` / ``"equispaced_lines"``: MONAI's 1D line masks along the *last* phase-encode axis,
      fully sampled along the readout axis (and, in 3D, along the other phase-encode axis).

    Args:
        kind: one of :data:`MASK_KINDS`.
        spatial_shape: k-space grid, 2 or 3 entries.
        accel: acceleration factor > 1; for lines, the acceleration along the sampled axis.
        calib: calibration size: for ``"poisson"`` an int or pair over the phase-encode axes (in their order);
            for lines the number of central lines (an int, or a pair whose last entry is used).
        seed: local random seed (None: fresh random mask).
        readout_axis: index of the fully sampled readout axis among the spatial axes (0-based, negative allowed).
        crop_corner, tol, max_iter: see :func:`poisson_disk_mask`.

    Returns:
        boolean array of ``spatial_shape`` (True = sampled).
    """
    kind = check_option(kind, MASK_KINDS, "kind")
    shape = _check_shape(spatial_shape, (2, 3), "spatial_shape")
    d = len(shape)
    if isinstance(readout_axis, bool) or not isinstance(readout_axis, (int, np.integer)) or not -d <= readout_axis < d:
        raise ValueError(f"readout_axis must be an int in [{-d}, {d - 1}] for a {d}D grid, got {readout_axis!r}.")
    ro = int(readout_axis) % d
    if kind == "poisson":
        if d == 2:
            return poisson_disk_mask(shape, accel, calib, crop_corner, seed, tol, max_iter)
        pe_axes = [a for a in range(3) if a != ro]
        plane = poisson_disk_mask(
            (shape[pe_axes[0]], shape[pe_axes[1]]), accel, calib, crop_corner, seed, tol, max_iter
        )
        return np.broadcast_to(np.expand_dims(plane, ro), shape).copy()
    if isinstance(calib, Sequence) and not isinstance(calib, str):
        calib = _as_pair(calib, "calib")[-1]
    pe_axis = max(a for a in range(d) if a != ro)
    lines = cartesian_line_mask(kind, shape[pe_axis], accel, calib, seed)  # type: ignore[arg-type]
    view = [1] * d
    view[pe_axis] = shape[pe_axis]
    return np.broadcast_to(lines.reshape(view), shape).copy()


@dataclass(frozen=True)
class MaskSpec:
    """The sampling pattern of an undersampling mask: the arguments of :func:`undersampling_mask` but the k-space grid
    and the seed, validated when the spec is made (so a bad bundle config fails when it is parsed, not at the first
    sample).

    Attributes:
        kind: one of :data:`MASK_KINDS`: ``"poisson"`` (variable-density Poisson-disc, :func:`poisson_disk_mask`),
            ``"random_lines"`` or ``"equispaced_lines"`` (MONAI's Cartesian line masks, :func:`cartesian_line_mask`).
        accel: acceleration factor > 1 (8 in "Hyper-Convolutions via Implicit Kernels for Medical Imaging",
            Sec. 4.3).
        calib: calibration size (Poisson: box side or pair over the phase-encode axes; lines: number of lines).
        readout_axis: spatial axis (0-based, negative allowed) that is fully sampled in 3D (and by line masks).
        crop_corner, tol, max_iter: Poisson-disc options, see :func:`poisson_disk_mask`; ``tol`` in (0, accel).
    """

    kind: str = "poisson"
    accel: float = 8.0
    calib: int | tuple[int, ...] = 24
    readout_axis: int = 0
    crop_corner: bool = True
    tol: float = 0.1
    max_iter: int = 30

    def __post_init__(self) -> None:
        kind = check_option(self.kind, MASK_KINDS, "kind")
        accel = check_number(self.accel, "accel", low=1.0, low_open=True)
        fields = {
            "kind": kind,
            "accel": accel,
            "calib": tuple(self.calib) if isinstance(self.calib, Sequence) else self.calib,
            "tol": check_number(self.tol, "tol", low=0.0, high=accel, low_open=True, high_open=True),
            "max_iter": check_positive_int(self.max_iter, "max_iter"),
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)  # a frozen dataclass normalises its fields this way

    def sample(self, spatial_shape: Sequence[int], seed: int | None) -> np.ndarray:
        """Boolean mask over the 2D or 3D ``spatial_shape`` (True = sampled), see :func:`undersampling_mask`."""
        return undersampling_mask(
            self.kind,
            tuple(int(s) for s in spatial_shape),
            self.accel,
            self.calib,  # type: ignore[arg-type]
            seed,
            self.readout_axis,
            self.crop_corner,
            self.tol,
            self.max_iter,
        )
