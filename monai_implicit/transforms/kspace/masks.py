"""Undersampling masks for retrospective compressed-sensing MRI.

Implements the sampling patterns of the CS-MRI experiment of "Hyper-Convolutions via Implicit Kernels for Medical
Imaging" (Ma, Wang, Dalca, Sabuncu), Sec. 4.3: 8x Poisson-disk variable-density undersampling of 256x256 k-space,
and the 1D Cartesian line patterns a CS-MRI researcher compares against.

* :func:`poisson_disk_mask` -- 2D variable-density Poisson-disc mask with a fully sampled calibration box. The
  exclusion radius of a sample grows linearly with its normalised distance from the calibration box (the density
  law of ``sigpy.mri.poisson``); samples are grown by Bridson's algorithm from continuous candidate positions
  recorded on the pixel grid, so the density follows that law at every acceleration (an exact disc pattern on the
  pixel lattice cannot: it is flat wherever the exclusion radius is 1-2 pixels). The slope is found by a
  bracketed, iteration-capped search that starts from a per-setting calibrated model (usually one or two patterns
  per mask), and a mask a few samples off an acceptable count is thinned or topped up, so that the requested
  acceleration is met within ``tol`` on every grid. Impossible
  requests and searches that do not come near raise ``ValueError`` instead of looping.
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
from scipy import ndimage, optimize
from scipy.spatial import cKDTree

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
_SUB = 2  # occupancy subcells per pixel and axis
_QUANT = 64  # exclusion radii are rounded to 1/_QUANT pixel
_EXACT_R = 2.0  # ellipses up to this radius (pixels, both axes) get an exact boundary test
# the first front starts at a candidate pixel within this normalised distance of the calibration box (None: anywhere;
# see the trade-off in the docstring of _PoissonDiscSampler)
_START_RHO: float | None = None


def _ellipse_runs(ry: float, rx: float, test: str) -> list[tuple[int, int, int]]:
    """Cells ``[a, a + 1) x [b, b + 1)`` (units of the radii) entirely inside ('far'), reached by ('near') or with their
    centre inside ('centre') the ellipse with radii ``(ry, rx)`` around the origin, as runs ``(row, first, stop)``, one
    per row (an ellipse is convex)."""
    hy, hx = int(math.ceil(ry)) + 1, int(math.ceil(rx)) + 1
    a = np.arange(-hy, hy, dtype=float)[:, None]
    b = np.arange(-hx, hx, dtype=float)[None, :]
    if test == "far":
        da, db = np.maximum(np.abs(a), np.abs(a + 1)), np.maximum(np.abs(b), np.abs(b + 1))
    elif test == "near":
        da, db = np.maximum(np.maximum(a, -(a + 1)), 0.0), np.maximum(np.maximum(b, -(b + 1)), 0.0)
    else:
        da, db = np.abs(a + 0.5), np.abs(b + 0.5)
    inside = (da / ry) ** 2 + (db / rx) ** 2 < 1.0
    rows = np.flatnonzero(inside.any(axis=1))
    first = inside[rows].argmax(axis=1) - hx
    stop = inside.shape[1] - inside[rows, ::-1].argmax(axis=1) - hx
    return list(zip((rows - hy).tolist(), first.tolist(), stop.tolist()))


@functools.lru_cache(maxsize=16384)
def _stencil(qy: int, qx: int) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """Runs ``(row, first, stop)`` around a lattice point for the ellipse with radii ``(qy, qx) / _QUANT`` pixels:
    ``sure`` in subcells (subcell ``(0, 0)`` lies just below-right of the point), ``edge`` in pixels (pixel ``(0, 0)``
    is the point's own cell; empty for ellipses without an exact boundary test). Shared by every sampler."""
    ry, rx = qy / _QUANT, qx / _QUANT
    if max(ry, rx) <= _EXACT_R:
        return _ellipse_runs(ry * _SUB, rx * _SUB, "far"), _ellipse_runs(ry, rx, "near")
    return _ellipse_runs(ry * _SUB, rx * _SUB, "centre"), []


_Runs = list[tuple[int, int, bytes]]


@functools.lru_cache(maxsize=65536)
def _flat_stencil(qy: int, qx: int, w: int, pw: int) -> tuple[_Runs, _Runs]:
    """:func:`_stencil` as flat offsets ``(start, stop, ones)`` in subcell rows of ``w`` and pixel rows of ``pw``."""
    sure_runs, edge_runs = _stencil(qy, qx)
    return (
        [(row * w + first, row * w + stop, b"\x01" * (stop - first)) for row, first, stop in sure_runs],
        [(row * pw + first, row * pw + stop, b"\x01" * (stop - first)) for row, first, stop in edge_runs],
    )


@functools.lru_cache(maxsize=16)
def _grid_geometry(shape: tuple[int, int], calib: tuple[int, int], crop_corner: bool) -> dict:
    """What a sampler needs that does not depend on the seed (read-only arrays, shared by the samplers of a grid):
    normalised distance ``rho_grid`` from the calibration box, the calibration box, the crop, the candidate pixels;
    ``"base"`` later holds the occupancy grids with the calibration box painted (see ``_PoissonDiscSampler.sample``)."""
    ny, nx = shape
    cy, cx = calib
    y, x = np.mgrid[:ny, :nx]
    # distance outside the calibration box, per axis, normalised to 1 at the farthest edge
    dx = np.maximum(np.abs(x - nx // 2) - cx / 2.0, 0.0)
    dy = np.maximum(np.abs(y - ny // 2) - cy / 2.0, 0.0)
    dx /= max(dx.max(), 1e-12)
    dy /= max(dy.max(), 1e-12)
    rho_grid = np.sqrt(dx**2 + dy**2)
    calib_full = np.zeros(shape, dtype=bool)
    calib_full[_centre_box(ny, cy), _centre_box(nx, cx)] = True
    allowed = rho_grid < 1 if crop_corner else np.ones(shape, dtype=bool)
    cand = allowed & ~calib_full  # candidates that can be kept
    geometry = {
        "rho_grid": rho_grid,
        "allowed": allowed,
        "calib_mask": calib_full & allowed,
        "calib_full": calib_full,
        "cand_flat": np.flatnonzero(cand),
        "start_flat": np.flatnonzero(
            cand if _START_RHO is None else cand & (rho_grid <= rho_grid[cand].min(initial=0.0) + _START_RHO)
        ),
        "rho": rho_grid[cand],
    }
    for value in geometry.values():
        value.flags.writeable = False
    geometry["base"] = {}  # padding -> occupancy grids before the first sample (filled by the first sampler)
    return geometry


class _PoissonDiscSampler:
    """Variable-density Poisson-disc sampling for one (shape, calib, crop, seed), grown by Bridson's algorithm.

    **Density law.** Every pixel ``p`` has a normalised distance ``rho(p)`` from the calibration box (0 on the box,
    1 at the edge of the grid along each axis) and an exclusion ellipse with radii
    ``r(p) = max(1, (1 + slope * rho(p)) * n / max(n_y, n_x))`` pixels per axis: a sample at ``p`` rejects every
    later candidate ``q`` with ``((q_y - p_y) / r_y(p))^2 + ((q_x - p_x) / r_x(p))^2 < 1``. A Poisson-disc pattern
    has a local density of about ``c / (r_y r_x)`` (``c`` ~ 0.6 for Bridson's algorithm), so the density falls as
    ``1 / (1 + slope * rho)^2`` away from the centre; ``slope`` is searched for the requested acceleration.

    **Continuous candidates on the pixel grid.** A disc pattern whose candidates are pixel centres can only realise
    the densities of lattice packings (about 1, 0.36, 0.19, ... of the pixels): where ``r`` is between 1 and ~2
    pixels its density is flat whatever the law asks. Here candidates are continuous positions, tested exactly
    against the lattice positions of the samples already taken; a candidate that passes is recorded at the pixel
    whose unit cell ``[i, i + 1) x [j, j + 1)`` contains it (the lattice point at the cell's lower corner, the
    convention of ``sigpy.mri.poisson``). Two samples can then be closer than ``r`` by less than a pixel, which lets
    the density rise smoothly towards 1 where ``r`` approaches 1 pixel; a candidate whose cell already holds a sample
    is rejected. The corner convention has a cost, shared with sigpy: a front growing towards higher indices packs
    more densely, so the half of k-space at higher indices holds 1-4% more of the samples than the other at
    accelerations 2-4 (sigpy: 1-3%), and where ``r`` is close to 1 pixel the density of a single mask varies more
    from seed to seed. The symmetric alternatives thin the centre instead (measured against sigpy's profile at
    accelerations 3-4, ring next to the calibration box): recording at the nearest pixel -20%, at a random corner of
    the cell -13%.

    **Growth** (Bridson, "Fast Poisson disk sampling in arbitrary dimensions", SIGGRAPH sketches 2007). The front starts
    from one pixel drawn by ``seed``. (A front packs more densely where it grows towards higher indices, so the sample
    count of a given slope varies by up to +-10% with where the front starts, and the acceleration search usually needs
    two patterns. Starting every front next to the calibration box (``_START_RHO = 0.05``) cuts that to ~1-3% and the
    search to about one pattern, but makes the half of k-space at higher indices ~15% denser than the other instead of
    3-7%; within 0.6 of it: ~3%, and 6%.) An active sample proposes up to ``attempts`` candidates, uniform (by area) in
    the annulus between its exclusion ellipse and the ellipse twice as large; the first that passes becomes a new active
    sample, and a sample none of whose candidates passes retires. Each round, every active sample proposes its
    candidates at once (vectorised); they are then accepted one proposer at a time, in an order drawn at random each
    round (Bridson picks active samples at random), each checked against the samples accepted before it, so the pattern
    is the one a sequential Bridson run visiting the front in that order would give. When the front dies out while a
    part of the grid wider than its exclusion ellipse is still free (e.g. the two sides of a calibration box that spans
    one axis), a new front starts at the deepest free cell (at most ``max_fronts``).

    **Implementation.** Exclusion ellipses are painted into occupancy grids: ``sure`` (``_SUB`` x ``_SUB`` subcells
    per pixel) marks the subcells entirely inside some ellipse, where a candidate is rejected by one lookup;
    ``edge`` (one cell per pixel) marks the pixels that an ellipse of radius <= ``_EXACT_R`` pixels reaches, where
    a candidate is tested exactly against the samples of the 5 x 5 pixels around it. Where the radius exceeds
    ``_EXACT_R`` (samples are then several pixels apart) a subcell counts as excluded when its centre is inside the
    ellipse, an error below ``1 / (2 * _SUB)`` pixel on the ellipse's boundary. Cells outside the grid and the
    calibration box are excluded before the first sample, and so are the calibration samples' own ellipses (radius
    1 pixel). Samples grow over the whole grid and ``crop_corner`` crops them afterwards, as ``sigpy.mri.poisson``
    does, so the corners exclude their neighbours inside the crop like any sample (a wall at the crop ellipse would
    pack the pattern along it, ~10% above the law in the outermost ring at high accelerations). Radii are rounded to
    ``1 / _QUANT`` pixel so samples share painted stencils. Candidates come from a counter-based hash of (seed,
    pixel, attempt number) rather than a sequential generator, so a change of slope only changes the pattern where
    the radii changed: the sample count is then a smoother function of the slope, which keeps the acceleration
    search short. Work is bounded: every accepted candidate adds a new pixel, and a round without one retires every
    active sample.
    """

    attempts = 30  # Bridson's k: rejected proposals before a sample retires
    max_fronts = 8
    _WINDOW = tuple((dy, dx) for dy in range(-2, 3) for dx in range(-2, 3))  # lattice points within _EXACT_R

    def __init__(self, shape: tuple[int, int], calib: tuple[int, int], crop_corner: bool, seed: int | None):
        ny, nx = shape
        self.shape = shape
        geometry = _grid_geometry(shape, calib, crop_corner)
        self.rho_grid = geometry["rho_grid"]
        self.allowed = geometry["allowed"]  # what a returned mask may hold
        self.calib_mask = geometry["calib_mask"]
        # samples are grown over the whole grid and cropped afterwards: the k-space corners then exclude their
        # neighbours inside the crop ellipse as any other samples do (a wall at the crop would pack the pattern
        # densely along it)
        self.calib_full = geometry["calib_full"]
        self.rho = geometry["rho"]
        self._base = geometry["base"]
        cand_flat, start_flat = geometry["cand_flat"], geometry["start_flat"]
        self.n_calib = int(np.count_nonzero(self.calib_mask))
        self.n_candidates = int(cand_flat.size)
        self.aspect = (ny / max(nx, ny), nx / max(nx, ny))
        # everything random derives from a local generator: the first front's pixel, the key of the proposal hash
        # and the seed of the proposing order, the same for every slope
        rng = np.random.default_rng(seed)
        self.first = int(start_flat[rng.integers(start_flat.size)]) if start_flat.size else -1
        self.hash_key = np.uint64(rng.integers(0, 2**63 - 1, dtype=np.int64))
        self.order_seed = int(rng.integers(0, 2**63 - 1))

    def radii(self, slope: float, rho: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Exclusion radii (pixels, per axis) at normalised distances ``rho`` (default: the candidate pixels)."""
        scale = 1.0 + (self.rho if rho is None else rho) * slope
        return np.maximum(scale * self.aspect[0], 1.0), np.maximum(scale * self.aspect[1], 1.0)

    def expected_density(self, slope: float) -> float:
        """Expected number of samples outside the calibration box: the sum over candidate pixels of the density of
        this construction at exclusion area ``a = r_y r_x`` (pixels), ``0.64 / a + 0.16 / a^4``, a fit of its
        measured density at uniform radii (0.80 at ``a = 1``, 0.48 at 1.44, 0.17 at 4, 0.071 at 9)."""
        ry, rx = self.radii(slope)
        area = ry * rx
        return float(np.sum(0.64 / area + 0.16 / area**4))

    def _uniform(self, pixel: np.ndarray, attempt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Two uniform [0, 1) numbers per (pixel, attempt): a splitmix64 hash of (seed, pixel, attempt)."""
        with np.errstate(over="ignore"):
            z = (pixel.astype(np.uint64) << np.uint64(24)) ^ attempt.astype(np.uint64)
            out = []
            for salt in (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xD1B54A32D192ED03)):
                v = z * salt + self.hash_key
                v = (v ^ (v >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
                v = (v ^ (v >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
                v ^= v >> np.uint64(31)
                out.append((v >> np.uint64(11)).astype(np.float64) * 2.0**-53)
        return out[0], out[1]

    def sample(self, slope: float) -> np.ndarray:
        """Boolean (ny, nx) mask for one slope (calibration box included)."""
        ny, nx = self.shape
        sub, quant = _SUB, _QUANT
        if self.n_candidates == 0:
            return self.calib_mask.copy()
        # beyond 2 * max(n) pixels an exclusion ellipse centred in the grid covers all of it: capping the scale
        # there changes no decision and bounds the padding
        scale = np.minimum(1.0 + self.rho_grid * slope, 2.0 * max(ny, nx))
        # radii rounded to 1 / _QUANT pixel (the density falls steeply with the radius near 1 pixel: rounding up
        # instead would thin the centre by a few per cent)
        qy_grid = np.rint(np.maximum(scale * self.aspect[0], 1.0) * quant).astype(np.int64)
        qx_grid = np.rint(np.maximum(scale * self.aspect[1], 1.0) * quant).astype(np.int64)
        pad = int(math.ceil(max(qy_grid.max(), qx_grid.max()) / quant)) + 3  # margin (pixels), >= the 5x5 window
        pw = nx + 2 * pad  # padded pixel grid, row length
        h, w = (ny + 2 * pad) * sub, pw * sub  # subcell grids
        # per padded pixel: sampled flag and (quantised) radii, for the exact tests
        taken_buf = bytearray((ny + 2 * pad) * pw)  # bytearray: fast scalar access in the loops below
        taken = np.frombuffer(taken_buf, dtype=np.uint8).view(bool)
        taken2d = taken.reshape(ny + 2 * pad, pw)
        taken2d[pad : pad + ny, pad : pad + nx] = self.calib_full
        ry_pad = np.ones(taken.size)
        rx_pad = np.ones(taken.size)
        ry_pad.reshape(taken2d.shape)[pad : pad + ny, pad : pad + nx] = qy_grid / quant
        rx_pad.reshape(taken2d.shape)[pad : pad + ny, pad : pad + nx] = qx_grid / quant
        qy_pad = np.zeros(taken.size, dtype=np.int64)
        qx_pad = np.zeros(taken.size, dtype=np.int64)
        qy_pad.reshape(taken2d.shape)[pad : pad + ny, pad : pad + nx] = qy_grid
        qx_pad.reshape(taken2d.shape)[pad : pad + ny, pad : pad + nx] = qx_grid
        qy_list, qx_list = qy_pad.tolist(), qx_pad.tolist()
        ry_list, rx_list = ry_pad.tolist(), rx_pad.tolist()
        sure_buf, edge_buf = bytearray(h * w), bytearray(taken.size)
        sure = np.frombuffer(sure_buf, dtype=np.uint8)
        edge = np.frombuffer(edge_buf, dtype=np.uint8)
        sure2d = sure.reshape(h, w)
        sure2d[:] = 1
        sure_inner = sure2d[pad * sub : (pad + ny) * sub, pad * sub : (pad + nx) * sub]
        edge_inner = edge.reshape(taken2d.shape)[pad : pad + ny, pad : pad + nx]
        ones = b"\x01" * (2 * pad * sub + 2)  # longer than any stencil row (an ellipse fits in the margin)
        recent_buf = bytearray(taken.size)  # edge pixels of the samples accepted in the current round (stamped)

        def paint(pp: int, stamp_ones: bytes | None = None) -> None:
            sure_runs, edge_runs = _flat_stencil(qy_list[pp], qx_list[pp], w, pw)  # stencils shared by every mask
            i, j = divmod(pp, pw)
            corner = i * sub * w + j * sub
            for a, b, fill in sure_runs:
                sure_buf[corner + a : corner + b] = fill
            for a, b, fill in edge_runs:
                edge_buf[pp + a : pp + b] = fill
                if stamp_ones is not None:
                    recent_buf[pp + a : pp + b] = stamp_ones[: b - a]

        base = self._base.get(pad)
        if base is None:
            # cells that may not hold a sample, and the calibration samples' ellipses (radius 1 pixel whatever the
            # slope): the same for every slope and seed, painted once per padding
            sure_inner[:] = np.repeat(np.repeat(self.calib_full, sub, axis=0), sub, axis=1)
            for pp in np.flatnonzero(taken).tolist():
                paint(pp)
            base = self._base[pad] = (sure2d.copy(), edge.copy())
        else:
            sure2d[:], edge[:] = base
        window = [dy * pw + dx for dy, dx in self._WINDOW]

        def clear_of(pp: int, qy: float, qx: float, among: set) -> bool:
            """Exact test of candidate (qy, qx) (padded pixel units) against the samples of ``among`` around ``pp``."""
            for d in window:
                o = pp + d
                if o in among:
                    i, j = divmod(o, pw)
                    if ((qy - i) / ry_list[o]) ** 2 + ((qx - j) / rx_list[o]) ** 2 < 1.0:
                        return False
            return True

        offsets = np.asarray(window, dtype=np.int64)
        off_y, off_x = np.divmod(offsets + pad * pw + pad, pw)
        off_y, off_x = off_y - pad, off_x - pad
        order_rng = np.random.default_rng(self.order_seed)  # the order in which the front proposes, per round
        attempts_done = np.zeros(ny * nx, dtype=np.int64)  # per pixel: proposals made so far (hash counter)
        tries = self.attempts
        attempt_no = np.arange(tries, dtype=np.int64)[None, :]
        first = self.first
        rounds = 0
        for front in range(self.max_fronts):
            if front:
                # the front died out: start another one only where a region wider than the local exclusion ellipse
                # is still free (a part of the domain the front could not reach, not one of the small voids
                # Bridson's algorithm leaves between samples), at its deepest cell
                cell_free = (sure_inner.reshape(ny, sub, nx, sub).max(axis=(1, 3)) == 0) & (edge_inner == 0)
                if not cell_free.any():
                    break
                depth = ndimage.distance_transform_edt(cell_free)
                first = int(np.argmax(depth))
                i, j = divmod(first, nx)
                if depth.flat[first] <= 2.0 * max(qy_grid[i, j], qx_grid[i, j]) / quant:
                    break
            i, j = divmod(first, nx)
            taken[(i + pad) * pw + j + pad] = True
            paint((i + pad) * pw + j + pad)
            active = np.array([first], dtype=np.int64)
            while active.size:
                # every active sample proposes ``attempts`` candidates at once, uniform by area in the annulus
                # between its ellipse and twice its ellipse (padded pixel units)
                n = active.size
                active = active[order_rng.permutation(n)]  # Bridson picks active samples at random
                proposer = np.repeat(active, tries)
                u, v = self._uniform(proposer, (attempts_done[active][:, None] + attempt_no).ravel())
                attempts_done[active] += tries
                ay, ax = np.divmod(proposer, nx)
                act_pp = (ay + pad) * pw + ax + pad
                dist = np.sqrt(1.0 + 3.0 * u)
                angle = 2.0 * np.pi * v
                qy = np.clip(ay + pad + dist * ry_pad[act_pp] * np.sin(angle), 0.0, ny + 2 * pad - 1e-6)
                qx = np.clip(ax + pad + dist * rx_pad[act_pp] * np.cos(angle), 0.0, pw - 1e-6)
                sy, sx = (qy * sub).astype(np.int64), (qx * sub).astype(np.int64)
                flat = sy * w + sx
                cell = (sy // sub) * pw + sx // sub
                # against the samples taken before this round: the sure parts, the taken cells, and the exact test
                # where an exact-boundary ellipse reaches the candidate's subcell
                ok = (sure[flat] == 0) & ~taken[cell]
                check = np.flatnonzero(ok & (edge[cell] > 0))
                if check.size:
                    fy, fx = qy[check].astype(np.int64), qx[check].astype(np.int64)
                    ly, lx = fy[:, None] + off_y[None, :], fx[:, None] + off_x[None, :]
                    lat = ly * pw + lx
                    inside = taken[lat] & (
                        ((qy[check, None] - ly) / ry_pad[lat]) ** 2 + ((qx[check, None] - lx) / rx_pad[lat]) ** 2
                        < 1.0
                    )
                    ok[check[inside.any(axis=1)]] = False
                # then one proposer at a time, in the front's order: its first candidate that is also clear of the
                # samples accepted earlier in this round is accepted; a proposer with none retires (Bridson's rule)
                rounds += 1
                stamp = rounds % 255 + 1  # marks the edge pixels painted in this round
                stamp_ones = bytes([stamp]) * len(ones)
                good = np.flatnonzero(ok)  # by proposer, then attempt
                rows, starts, counts = np.unique(good // tries, return_index=True, return_counts=True)
                good_idx, good_pp = flat[good].tolist(), cell[good].tolist()
                good_y, good_x = qy[good].tolist(), qx[good].tolist()
                succeeded: list[int] = []
                born: list[int] = []
                round_born: set = set()
                for r, start, count in zip(rows.tolist(), starts.tolist(), counts.tolist()):
                    for m in range(start, start + count):
                        idx, pp = good_idx[m], good_pp[m]
                        if sure_buf[idx] or taken_buf[pp]:
                            continue
                        if recent_buf[pp] == stamp:
                            y, x = good_y[m], good_x[m]
                            if not clear_of(int(y) * pw + int(x), y, x, round_born):
                                continue
                        taken_buf[pp] = 1
                        round_born.add(pp)
                        paint(pp, stamp_ones)
                        succeeded.append(r)
                        born.append(pp)
                        break
                success = np.zeros(n, dtype=bool)
                success[succeeded] = True
                born_pp = np.asarray(born, dtype=np.int64)
                born_y, born_x = np.divmod(born_pp, pw)
                born = ((born_y - pad) * nx + born_x - pad).tolist()
                active = np.concatenate([active[success], np.asarray(born, dtype=np.int64)])
        return taken2d[pad : pad + ny, pad : pad + nx] & self.allowed


def _solve_density(sampler: _PoissonDiscSampler, target: float, lo: float, hi: float) -> float:
    """Slope in [lo, hi] at which ``sampler.expected_density`` equals ``target`` (monotone decreasing; the nearer end
    when the target is out of reach), by Brent's method (~10 evaluations)."""
    f_lo, f_hi = sampler.expected_density(lo) - target, sampler.expected_density(hi) - target
    if f_lo <= 0:
        return lo
    if f_hi >= 0:
        return hi
    return float(optimize.brentq(lambda x: sampler.expected_density(x) - target, lo, hi, xtol=1e-9 * (1.0 + hi)))


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


def _scaled_points(sampler: _PoissonDiscSampler, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Pixel coordinates divided by the aspect factors of the exclusion radii (ellipses become circles)."""
    return np.stack([ys / sampler.aspect[0], xs / sampler.aspect[1]], axis=1)


def _match_count(sampler: _PoissonDiscSampler, mask: np.ndarray, slope: float, goal: int) -> np.ndarray:
    """``mask`` thinned or topped up to exactly ``goal`` samples, following the density law at ``slope``.

    Crowding is measured against the law: a sample's (or a free pixel's) distance to its nearest sample, in units of
    the exclusion radius there. Thinning removes the most crowded samples outside the calibration box (never both of
    a close pair in one pass); topping up adds, one at a time, the free pixel farthest from every sample (greedy
    farthest-point insertion), i.e. where the density is lowest relative to the law. Both are deterministic.
    """
    mask = mask.copy()
    scale = np.maximum(1.0 + sampler.rho_grid * slope, 1.0 / min(sampler.aspect))
    count = int(mask.sum())
    if count < goal:
        ys, xs = np.nonzero(mask)
        fy, fx = np.nonzero(sampler.allowed & ~mask & ~sampler.calib_full)
        free = _scaled_points(sampler, fy, fx)
        free_scale = scale[fy, fx]
        score = cKDTree(_scaled_points(sampler, ys, xs)).query(free)[0] / free_scale
        free_tree, scale_max = cKDTree(free), float(free_scale.max())
        for _ in range(goal - count):
            i = int(np.argmax(score))
            mask[fy[i], fx[i]] = True
            # only free pixels nearer than score * scale to the new sample get a lower score; every score is at
            # most score[i]
            near = np.asarray(free_tree.query_ball_point(free[i], score[i] * scale_max), dtype=np.int64)
            score[near] = np.minimum(score[near], np.hypot(*(free[near] - free[i]).T) / free_scale[near])
            score[i] = -np.inf
        return mask
    removable = ~sampler.calib_full
    while count > goal:
        ys, xs = np.nonzero(mask)
        dist, nearest = cKDTree(_scaled_points(sampler, ys, xs)).query(_scaled_points(sampler, ys, xs), k=2)
        score = np.where(removable[ys, xs], dist[:, 1] / scale[ys, xs], np.inf)
        removed = np.zeros(ys.size, dtype=bool)
        for i in np.argsort(score, kind="stable")[: count - goal].tolist():
            if np.isinf(score[i]) or removed[nearest[i, 1]]:
                continue  # its crowding neighbour already went in this pass: measure again
            removed[i] = True
        mask[ys[removed], xs[removed]] = False
        count -= int(removed.sum())
    return mask


_REFERENCE_SAMPLES = 8000  # reference patterns hold about this many samples outside the calibration box together
_REFERENCE_SEEDS = (2, 8)  # fewest and most reference patterns (seeds 0, 1, ...)


@functools.lru_cache(maxsize=64)
def _reference_scale(shape: tuple[int, int], accel: float, calib: tuple[int, int], crop_corner: bool) -> float:
    """Sample count of this construction relative to :meth:`_PoissonDiscSampler.expected_density` for one setting:
    measured once, on the patterns of fixed reference seeds (more on small grids) at the slope the model gives for
    ``accel``, then again at the slope the corrected model gives. It depends on the setting only, so every seed
    starts its search from the same corrected slope, and masks stay a function of their arguments. The model is
    off by up to ~10% at low accelerations (it would cost most masks a third pattern); a pattern's count varies by up
    to ~10% with the seed (where its first front starts), which the second pattern of a search corrects."""
    first = _PoissonDiscSampler(shape, calib, crop_corner, 0)
    need = shape[0] * shape[1] / accel - first.n_calib
    if need <= 0 or first.n_candidates == 0:
        return 1.0
    n_seeds = min(max(math.ceil(_REFERENCE_SAMPLES / need), _REFERENCE_SEEDS[0]), _REFERENCE_SEEDS[1])
    samplers = [first] + [_PoissonDiscSampler(shape, calib, crop_corner, seed) for seed in range(1, n_seeds)]
    scale = 1.0
    for _ in range(2):  # the ratio changes with the slope: measure it again near the slope it leads to
        slope = _solve_density(samplers[0], need / scale, 0.0, float(max(shape)))
        density = samplers[0].expected_density(slope)
        count = sum(float(np.count_nonzero(s.sample(slope))) - s.n_calib for s in samplers) / len(samplers)
        if density <= 0 or count <= 0:
            return 1.0
        scale = count / density
    return scale


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
    # the whole sample count closest to the target among the acceptable ones, and how many samples the final
    # thinning / topping up may move (2% of the samples outside the calibration box, at least 4)
    goal = max(min(round(target), math.ceil(n_max) - 1, most), math.floor(n_min) + 1, sampler.n_calib + 1)
    slack = max(4, math.ceil(0.02 * (goal - sampler.n_calib)))
    # a mask within slack of the acceptable counts is thinned or topped up into the inner half of their range
    half_width = max(0, math.floor(0.5 * min(goal - n_min, n_max - goal)))

    def accel_of(m: np.ndarray) -> float:
        return total / float(m.sum())

    lo, hi = 0.0, float(max(nx, ny))
    hi_max = hi  # the sparsest pattern searched
    hi_checked = False
    # count(slope) ~ n_calib + k * expected_density(slope); refit k after every evaluation (a model-based secant
    # step) and fall back to bisection whenever the proposal leaves the bracket or stalls.
    k = _reference_scale(shape, accel, calib, crop_corner)
    slope = _solve_density(sampler, (target - sampler.n_calib) / k, lo, hi)
    # the mask closest to the goal so far: (|count - goal|, its acceleration, mask, slope)
    best: tuple[float, float, np.ndarray | None, float] = (math.inf, 0.0, None, 0.0)
    count_lo: float | None = None  # sample counts at the ends of the bracket, once evaluated
    count_hi: float | None = None
    for it in range(max_iter):
        mask = sampler.sample(slope)
        count = float(mask.sum())
        acc = accel_of(mask)
        if abs(acc - accel) < tol:
            return mask
        if n_min - slack < count < n_max + slack:
            # a few samples from an acceptable count (the pattern's count varies by ~1-2% with the seed at a given
            # slope): cheaper than another pattern, and it moves at most ``slack`` samples
            return _match_count(sampler, mask, slope, goal + int(np.clip(count - goal, -half_width, half_width)))
        if abs(count - goal) < best[0]:
            best = (abs(count - goal), acc, mask, slope)
        if count > target and not hi_checked and slope > 0.25 * hi_max:
            # the search is heading for the sparsest pattern: make sure it can reach accel at all
            hi_checked = True
            mask_hi = sampler.sample(hi_max)
            if mask_hi.sum() > n_max + slack:
                raise ValueError(
                    f"Cannot reach accel={accel} on a {ny}x{nx} grid: the sparsest variable-density pattern only "
                    f"reaches acceleration {accel_of(mask_hi):.3g}; use a smaller calib or a lower accel."
                )
            if mask_hi.sum() >= n_min:
                return mask_hi if mask_hi.sum() < n_max else _match_count(sampler, mask_hi, hi_max, goal)
            if hi == hi_max:
                count_hi = float(mask_hi.sum())
        if count > target:
            lo, count_lo = slope, count
        else:
            hi, count_hi = slope, count
        if hi - lo <= 1e-10 * (1.0 + hi):
            break
        density = sampler.expected_density(slope)
        if count_lo is not None and count_hi is not None and count_hi > 0 and it % 3 != 2:
            # both ends of the bracket evaluated: interpolate log(count) linearly between them (regula falsi)
            w_lo = math.log(count_lo / target)
            proposal = lo + (hi - lo) * w_lo / (w_lo - math.log(count_hi / target))
        elif density > 0 and count > sampler.n_calib and it % 3 != 2:
            k = (count - sampler.n_calib) / density
            proposal = _solve_density(sampler, (target - sampler.n_calib) / k, lo, hi)
        else:  # every third step bisects, so the bracket shrinks whatever the noise of the counts
            proposal = 0.5 * (lo + hi)
        # a proposal at (or beyond) an end of the bracket would repeat an evaluated slope: bisect instead
        margin = 1e-6 * (hi - lo)
        slope = proposal if lo + margin < proposal < hi - margin else 0.5 * (lo + hi)
    # the sample count is a step function of the slope: on small grids (or with a tight tol) no slope may give an
    # acceptable count. The closest mask is then thinned or topped up to the goal, if that moves few samples.
    gap, closest, mask, slope = best
    if mask is not None and gap <= slack:
        return _match_count(sampler, mask, slope, goal)
    raise ValueError(
        f"Poisson-disc search did not reach accel={accel} within tol={tol} after {max_iter} iterations "
        f"(closest: {closest:.4g}); increase tol or max_iter."
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

    Samples keep an exclusion distance ``r = max(1, 1 + slope * rho)`` pixels (scaled per axis by
    ``n / max(n_y, n_x)``) that grows linearly with their normalised distance ``rho`` from a fully sampled central
    calibration box (``rho = 0`` on the box, 1 at the image edge along each axis), so the sampling density falls
    off as about ``1 / r^2`` towards high frequencies, the variable-density law of ``sigpy.mri.poisson``. The
    pattern is grown by Bridson's algorithm ("Fast Poisson disk sampling in arbitrary dimensions") from continuous
    candidate positions that are recorded at the pixel whose cell contains them; near the calibration box, where
    ``r`` is close to one pixel, this is what lets the density rise towards 1 as the law asks (see
    ``_PoissonDiscSampler``). Ring by ring (8 rings of the normalised radius), the density averaged over a few masks
    matches ``sigpy.mri.poisson``'s within 12% (measured for accelerations 3-12 on 128x128 to 320x320 grids,
    non-square grids and 3D phase-encode planes; within 6% on 256x256); the ring next to the calibration box is the
    sparser by 2-10%. A mask costs a steady 0.02 s (128x128, 12x) to 0.45 s (256x256, 4x) on one CPU core, one or
    two patterns (the first mask of a setting also measures the model's error on a few reference patterns, see
    ``_reference_scale``), where sigpy's cost varies about tenfold with the seed.

    The slope is searched (from the slope at which the density model, scaled by its error measured once per
    setting, gives ``accel``; then bracketed, model-guided secant and regula falsi steps with a bisection every third
    step, at most ``max_iter`` mask evaluations) until the achieved acceleration ``prod(shape) / mask.sum()`` lies
    within ``tol`` of ``accel``. A mask whose count is at most 2% of the samples outside the calibration box (at
    least 4) from an acceptable count is brought into the inner half of the acceptable range instead of sampling
    another pattern, by removing the most crowded samples outside the calibration box, or adding samples at the free
    pixels farthest from every sample, both measured in units of the local exclusion radius. The sample count is a
    step function of the slope, so on small grids (or with a small ``tol``) no slope may give an acceptable count:
    the mask closest to the goal is then brought to the whole count nearest ``prod(shape) / accel`` the same way (at
    most 2% of the samples, at least 4, move). Masks for a given seed are cached (LRU, 32 entries): repeated calls
    with the same arguments cost a copy.

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
            densest or sparsest pattern cannot reach ``accel``), or no mask within reach of an acceptable sample
            count after ``max_iter`` evaluations.
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
    _reference_scale.cache_clear()


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
