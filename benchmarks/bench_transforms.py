"""Benchmark of the CS-MRI transforms (Hyper-Convolution paper, seed 000, §4.3).

Prints JSON with

* Poisson-disc mask generation (256x256, accel 8, calib 24 by default): our numpy implementation vs
  ``sigpy.mri.poisson`` (numba), measured side by side in this process with distinct seeds (so our mask cache is
  not hit), interleaved, after a warm-up (which includes sigpy's JIT compilation); median of the repeats.
  ``speedup_vs_sigpy`` = sigpy median / ours median (> 1: ours is faster). Skipped when sigpy is not installed.
* the cost of a cached mask (fixed shape and seed);
* throughput of ``RetrospectiveUndersampled`` (image -> zero-filled, target, k-space, mask) in slices/s on 256x256
  slices, next to MONAI's ``RandomKspaceMask`` (k-space -> masked k-space + zero-filled magnitude; it needs the
  k-space as input, so it does one FFT less per slice).

Transforms run in DataLoader workers, where PyTorch uses one intra-op thread; the benchmark does the same unless
``--threads`` says otherwise.

Usage: ``python benchmarks/bench_transforms.py [--quick] [--repeats N] [--threads T]``.
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

from monai_implicit.transforms import RetrospectiveUndersampled, poisson_disk_mask


def bench_masks(size: int, accel: float, calib: int, repeats: int) -> dict:
    try:
        import sigpy.mri  # noqa: PLC0415
    except ImportError:
        sigpy_poisson = None
    else:
        sigpy_poisson = sigpy.mri.poisson

    shape = (size, size)
    poisson_disk_mask(shape, accel, calib, seed=10_000)  # warm-up
    if sigpy_poisson is not None:
        sigpy_poisson(shape, accel, calib=(calib, calib), seed=10_000)  # warm-up incl. numba compilation
    ours_t, ours_acc, peer_t, peer_acc = [], [], [], []
    for r in range(repeats):
        t, m = clock(poisson_disk_mask, shape, accel, calib, seed=r)
        ours_mask = m
        ours_t.append(t)
        ours_acc.append(m.size / m.sum())
        if sigpy_poisson is not None:
            t, m = clock(sigpy_poisson, shape, accel, calib=(calib, calib), seed=r)
            peer_mask = m
            peer_t.append(t)
            peer_acc.append(m.size / np.abs(m).sum())
    cached = [clock(poisson_disk_mask, shape, accel, calib, seed=0)[0] for _ in range(repeats)]
    # sampling density in rings of normalised radius: the two variable-density profiles should agree
    y, x = np.mgrid[: shape[0], : shape[1]]
    radius = np.hypot((y - shape[0] // 2) / (shape[0] / 2), (x - shape[1] // 2) / (shape[1] / 2))
    edges = [0.0, 0.25, 0.5, 0.75, 1.0]
    rings = [(radius >= a) & (radius < b) for a, b in zip(edges[:-1], edges[1:])]
    result = {
        "shape": list(shape),
        "accel": accel,
        "calib": calib,
        "repeats": repeats,
        "ours_s": statistics.median(ours_t),
        "ours_achieved_accel": [round(min(ours_acc), 3), round(max(ours_acc), 3)],
        "ours_cached_s": statistics.median(cached),
        "ring_edges": edges,
        "ours_ring_density": [round(float(ours_mask[r].mean()), 4) for r in rings],
    }
    if sigpy_poisson is None:
        result.update({"sigpy_s": None, "speedup_vs_sigpy": None, "note": "sigpy not installed: pip install sigpy"})
    else:
        result.update(
            {
                "sigpy_s": statistics.median(peer_t),
                "sigpy_achieved_accel": [round(min(peer_acc), 3), round(max(peer_acc), 3)],
                "speedup_vs_sigpy": statistics.median(peer_t) / statistics.median(ours_t),
                "sigpy_ring_density": [round(float(np.abs(peer_mask)[r].mean()), 4) for r in rings],
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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = 128 if args.quick else 256
    repeats = args.repeats or (3 if args.quick else 7)
    out = {
        "benchmark": "transforms",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "host": describe_machine(),
        "poisson_mask": bench_masks(size, 8.0, 24 if size >= 128 else 8, repeats),
        "undersampling_throughput": bench_throughput(size, 50 if args.quick else 200, repeats),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
