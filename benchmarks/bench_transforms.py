"""Benchmark of the CS-MRI transforms ("Hyper-Convolutions via Implicit Kernels for Medical Imaging", Sec. 4.3).

Prints JSON with

* Poisson-disc masks (256x256, calibration 24, accelerations 4, 8 and 12 by default; 8 is the paper's setting): our
  implementation vs ``sigpy.mri.poisson`` (numba), measured side by side in this process with distinct seeds (so our
  mask cache is not hit), interleaved, after a warm-up (which includes sigpy's JIT compilation and our one-off
  measurement of the density model's error for the setting); median and mean over the masks (``--mask-repeats``,
  16 by default, 8 with ``--quick``: sigpy's time varies ~10-fold between seeds, with the number and cost of its
  bisection steps, and its seeds 0-3 happen to be among its cheapest, so a handful of seeds is not
  representative). Also the 3D case: the (ky, kz) phase-encode plane of a 3D acquisition (160x96, calibration
  20x12, acceleration 8; timings and profiles only). ``speedup_vs_sigpy`` = sigpy median /
  ours median, ``speedup_mean_vs_sigpy`` the same for the means (> 1: ours is faster). For each setting also

  - the variable-density profiles: the sampling density per ring of the normalised radius
    ``sqrt((ky / (n_y / 2))^2 + (kx / (n_x / 2))^2)`` (8 rings of width 1/8, outside the calibration box, rings of
    at least 200 pixels), averaged over the masks of each implementation, and the largest relative deviation of
    ours from sigpy's over the rings (``max_rel_deviation``);
  - the zero-filled reconstruction PSNR (dB, data range 1, MONAI ``PSNRMetric``) of the same images undersampled by
    both implementations' masks (magnitude of the orthonormal centred inverse FFT), mean over images and masks:
    brain phantoms (``monai_implicit.data.make_brain_phantom``) and, when ``nilearn`` is installed, axial slices of
    its packaged MNI152 T1 template (``nilearn.datasets.load_mni152_template(resolution=1)``, zero-padded to the
    grid, or resampled when the grid is smaller than the slice).

  Skipped when sigpy is not installed; sigpy's own slope search fails for some seeds (reported in
  ``sigpy_failed_seeds``; the next seed is used).
* the cost of a cached mask (fixed shape and seed);
* throughput of ``RetrospectiveUndersampled`` (image -> zero-filled, target, k-space, mask) in slices/s on 256x256
  slices, next to MONAI's ``RandomKspaceMask`` (k-space -> masked k-space + zero-filled magnitude; it needs the
  k-space as input, so it does one FFT less per slice).

Transforms run in DataLoader workers, where PyTorch uses one intra-op thread; the benchmark does the same unless
``--threads`` says otherwise.

Usage: ``python benchmarks/bench_transforms.py [--quick] [--repeats N] [--mask-repeats M] [--threads T]
[--accels 4 8 12]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics

import numpy as np
import torch
from _timing import clock, describe_machine, interleaved, medians
from monai.apps.reconstruction.transforms.array import RandomKspaceMask
from monai.data import MetaTensor
from monai.data.fft_utils import fftn_centered
from monai.metrics import PSNRMetric
from scipy import ndimage

from monai_implicit.data import make_brain_phantom
from monai_implicit.transforms import RetrospectiveUndersampled, poisson_disk_mask
from monai_implicit.transforms.kspace.fft import image_to_kspace, kspace_to_image

N_RINGS, MIN_RING_PIXELS = 8, 200
MNI_AXIAL_SLICES = (64, 82, 102, 120)  # template voxel index z, inside the brain (MNI z = -8 to +48 mm)


def ring_density(masks: list[np.ndarray], calib: tuple[int, int]) -> tuple[list[int], list[float]]:
    """Mean sampling density per ring of the normalised radius (ellipses on non-square grids), outside the
    calibration box; rings with fewer than MIN_RING_PIXELS such pixels are left out. Returns (rings, densities)."""
    ny, nx = masks[0].shape
    y, x = np.mgrid[:ny, :nx]
    ring = np.floor(np.hypot((y - ny // 2) / (ny / 2), (x - nx // 2) / (nx / 2)) * N_RINGS).astype(int)
    outside = np.ones((ny, nx), dtype=bool)
    by, bx = (ny - calib[0] + 1) // 2, (nx - calib[1] + 1) // 2  # the calibration box of both implementations
    outside[by : by + calib[0], bx : bx + calib[1]] = False
    stack = np.stack(masks).astype(float)
    rings = [i for i in range(N_RINGS) if np.count_nonzero((ring == i) & outside) >= MIN_RING_PIXELS]
    return rings, [float(stack[:, (ring == i) & outside].mean()) for i in rings]


def test_images(size: int) -> dict[str, list[np.ndarray]]:
    """Fully sampled magnitude images in [0, 1]: brain phantoms and, when nilearn is installed, MNI152 slices."""
    images = {"phantom": [make_brain_phantom(seed, shape=size) for seed in range(4)]}
    try:
        from nilearn.datasets import load_mni152_template  # noqa: PLC0415
    except ImportError:
        return images
    volume = np.asarray(load_mni152_template(resolution=1).get_fdata(), dtype=np.float32)
    slices = []
    for z in MNI_AXIAL_SLICES:
        img = volume[:, :, z]
        if max(img.shape) > size:  # resample to fit the grid; otherwise keep the 1 mm pixels
            img = np.clip(ndimage.zoom(img, size / max(img.shape), order=1), 0, None)[:size, :size]
        out = np.zeros((size, size), np.float32)  # zero-padded, centred
        oy, ox = (size - img.shape[0]) // 2, (size - img.shape[1]) // 2
        out[oy : oy + img.shape[0], ox : ox + img.shape[1]] = img
        slices.append(out / out.max())
    images["mni152"] = slices
    return images


def zero_filled_psnr(images: list[np.ndarray], masks: list[np.ndarray]) -> float:
    """Mean PSNR (data range 1) of the zero-filled magnitude of every image under every mask."""
    metric = PSNRMetric(max_val=1.0)
    values = []
    for img in images:
        x = torch.as_tensor(img)[None]
        k = image_to_kspace(x)
        for m in masks:
            zf = kspace_to_image(k * torch.as_tensor(m))[None].abs()
            values.append(float(metric(zf, x[None]).mean()))
    return float(np.mean(values))


def bench_masks(
    shape: tuple[int, int], accel: float, calib: tuple[int, int], repeats: int, images: dict[str, list[np.ndarray]]
) -> dict:
    try:
        import sigpy.mri  # noqa: PLC0415
    except ImportError:
        sigpy_poisson = None
    else:
        sigpy_poisson = sigpy.mri.poisson

    poisson_disk_mask(shape, accel, calib, seed=10_000)  # warm-up
    if sigpy_poisson is not None:
        try:  # warm-up incl. numba compilation
            sigpy_poisson(shape, accel, calib=calib, seed=10_000)
        except ValueError:
            pass
    ours_t, ours_acc, ours_masks, peer_t, peer_acc, peer_masks, peer_failed = [], [], [], [], [], [], []
    peer_seed = 0
    for r in range(repeats):
        t, m = clock(poisson_disk_mask, shape, accel, calib, seed=r)
        ours_masks.append(m)
        ours_t.append(t)
        ours_acc.append(m.size / m.sum())
        while sigpy_poisson is not None and len(peer_masks) <= r and peer_seed < 4 * repeats:
            try:
                t, m = clock(sigpy_poisson, shape, accel, calib=calib, seed=peer_seed)
            except ValueError:  # sigpy's slope search did not reach accel for this seed (not timed)
                peer_failed.append(peer_seed)
            else:
                peer_masks.append(np.abs(m) > 0)
                peer_t.append(t)
                peer_acc.append(m.size / np.abs(m).sum())
            peer_seed += 1
    cached = [clock(poisson_disk_mask, shape, accel, calib, seed=0)[0] for _ in range(repeats)]
    rings, ours_density = ring_density(ours_masks, calib)
    result = {
        "shape": list(shape),
        "accel": accel,
        "calib": list(calib),
        "repeats": repeats,
        "ours_s": statistics.median(ours_t),
        "ours_mean_s": statistics.fmean(ours_t),
        "ours_achieved_accel": [round(min(ours_acc), 3), round(max(ours_acc), 3)],
        "ours_cached_s": statistics.median(cached),
        "rings": {"count": N_RINGS, "min_pixels": MIN_RING_PIXELS, "kept": rings},
        "ours_ring_density": [round(d, 4) for d in ours_density],
        "ours_zero_filled_psnr_db": {k: round(zero_filled_psnr(v, ours_masks), 2) for k, v in images.items()},
    }
    if sigpy_poisson is None or not peer_masks:
        result.update({"sigpy_s": None, "speedup_vs_sigpy": None, "note": "sigpy not installed: pip install sigpy"})
        return result
    _, peer_density = ring_density(peer_masks, calib)
    deviation = [(o - p) / p for o, p in zip(ours_density, peer_density)]
    result.update(
        {
            "sigpy_s": statistics.median(peer_t),
            "sigpy_mean_s": statistics.fmean(peer_t),
            "sigpy_achieved_accel": [round(min(peer_acc), 3), round(max(peer_acc), 3)],
            "sigpy_failed_seeds": peer_failed,
            "speedup_vs_sigpy": statistics.median(peer_t) / statistics.median(ours_t),
            "speedup_mean_vs_sigpy": statistics.fmean(peer_t) / statistics.fmean(ours_t),
            "sigpy_ring_density": [round(d, 4) for d in peer_density],
            "ring_rel_deviation": [round(d, 3) for d in deviation],
            "max_rel_deviation": round(max(abs(d) for d in deviation), 3),
            "sigpy_zero_filled_psnr_db": {k: round(zero_filled_psnr(v, peer_masks), 2) for k, v in images.items()},
        }
    )
    return result


def bench_throughput(size: int, n_slices: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    slices = [
        MetaTensor(torch.as_tensor(rng.uniform(0, 1, (1, size, size)).astype(np.float32)), meta={"id": i})
        for i in range(n_slices)
    ]
    ours = RetrospectiveUndersampled("image", kind="poisson", accel=8.0, calib=24 if size >= 128 else 8, seed=0)
    kspaces = [fftn_centered(s.as_tensor(), spatial_dims=2, is_complex=False) for s in slices]
    monai_mask = RandomKspaceMask(center_fractions=[0.08], accelerations=[8.0], spatial_dims=2, is_complex=True)
    monai_mask.set_random_state(0)

    def run_ours() -> None:
        for s in slices:
            ours({"image": s})

    def run_monai() -> None:
        for k in kspaces:
            monai_mask(k)

    # one warm-up call each (ours builds and caches the mask), then interleaved rounds
    times = medians(interleaved({"ours": run_ours, "monai": run_monai}, repeats))
    ours_sps = n_slices / times["ours"]
    monai_sps = n_slices / times["monai"]
    return {
        "slice": [size, size],
        "n_slices": n_slices,
        "repeats": repeats,
        "retrospective_undersampled_slices_per_s": ours_sps,
        "monai_random_kspace_mask_slices_per_s": monai_sps,
        "ratio_vs_monai": ours_sps / monai_sps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="128x128 and fewer repeats (smoke run)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (1, as in DataLoader workers, by default)"
    )
    parser.add_argument("--accels", type=float, nargs="+", default=[4.0, 8.0, 12.0], help="Poisson-disc accelerations")
    parser.add_argument(
        "--mask-repeats", type=int, default=None, help="masks per implementation and setting (16; 8 with --quick)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = 128 if args.quick else 256
    repeats = args.repeats or (3 if args.quick else 7)
    mask_repeats = args.mask_repeats or (8 if args.quick else 16)
    images = test_images(size)
    out = {
        "benchmark": "transforms",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "host": describe_machine(),
        "psnr_images": {k: len(v) for k, v in images.items()},
        "poisson_mask": [bench_masks((size, size), a, (24, 24), mask_repeats, images) for a in args.accels],
        "poisson_mask_3d_plane": bench_masks((160, 96), 8.0, (20, 12), mask_repeats, {}),
        "undersampling_throughput": bench_throughput(size, 50 if args.quick else 200, repeats),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
