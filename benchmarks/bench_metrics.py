"""Benchmark: HD95 and lesion-wise metrics of monai_implicit.metrics against MONAI (and medpy when installed).

Synthetic lesion cases (scattered ellipsoids, some missed, some false positives, spacing 0.8 x 0.8 x 3 mm) of
256x256x128 and 512x512x300 voxels. For each case the same float32 tensors go to every implementation in one
process; each timing is the median of several runs after a warm-up. Prints one JSON document.

    python benchmarks/bench_metrics.py            # the sizes above (a few minutes on 2 cores)
    python benchmarks/bench_metrics.py --quick    # 96x96x48 and 160x160x80
"""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np
import torch
from _timing import describe_machine, timed
from monai.metrics import compute_hausdorff_distance
from scipy import ndimage

from monai_implicit.metrics import compute_hausdorff_percentile, compute_lesion_wise

SPACING = (0.8, 0.8, 3.0)


def lesion_case(shape: tuple[int, int, int], n_lesions: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, ground truth) boolean volumes with scattered ellipsoidal lesions."""
    rng = np.random.default_rng(seed)
    gt = np.zeros(shape, bool)
    pred = np.zeros(shape, bool)
    scale = shape[0] / 512

    def blob(arr: np.ndarray, centre: np.ndarray, radii: np.ndarray) -> None:
        lo = [max(int(c - r) - 1, 0) for c, r in zip(centre, radii)]
        hi = [min(int(c + r) + 2, n) for c, r, n in zip(centre, radii, shape)]
        region = tuple(slice(a, b) for a, b in zip(lo, hi))
        grid = np.ogrid[region]
        arr[region] |= sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1.0

    margin = np.array(shape) * 0.05 + 2
    for _ in range(n_lesions):
        centre = rng.uniform(margin, np.array(shape) - margin)
        radii = rng.uniform([2, 2, 1], [2 + 10 * scale, 2 + 10 * scale, 4])
        blob(gt, centre, radii)
        if rng.random() < 0.8:  # detected, with a shifted, resized outline
            blob(pred, centre + rng.normal(0, 1.0, 3), radii * rng.uniform(0.7, 1.3, 3))
    for _ in range(n_lesions // 4):  # false positives
        blob(pred, rng.uniform(margin, np.array(shape) - margin), rng.uniform([1, 1, 1], [4, 4, 2]))
    return pred, gt


def run_case(shape: tuple[int, int, int], n_lesions: int, repeats: int, lesion: bool) -> dict:
    pred, gt = lesion_case(shape, n_lesions)
    yp = torch.from_numpy(pred)[None, None].float()
    yt = torch.from_numpy(gt)[None, None].float()
    out: dict = {"shape": list(shape), "spacing_mm": list(SPACING), "foreground_voxels": [int(pred.sum()),
                                                                                           int(gt.sum())]}

    t_ours, v_ours = timed(lambda: compute_hausdorff_percentile(yp, yt, spacing=SPACING).item(), repeats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_monai, v_monai = timed(
            lambda: compute_hausdorff_distance(yp, yt, include_background=True, percentile=95, spacing=SPACING).item(),
            repeats,
        )
    out["hd95_max"] = {
        "ours_s": round(t_ours, 4), "monai_s": round(t_monai, 4), "speedup_vs_monai": round(t_monai / t_ours, 1),
        "ours_mm": round(v_ours, 4), "monai_mm": round(v_monai, 4), "abs_diff_mm": abs(v_ours - v_monai),
    }
    t_pooled, v_pooled = timed(
        lambda: compute_hausdorff_percentile(yp, yt, reduction="pooled", spacing=SPACING).item(), repeats
    )
    out["hd95_pooled"] = {"ours_s": round(t_pooled, 4), "ours_mm": round(v_pooled, 4)}
    try:
        from medpy.metric.binary import hd95 as medpy_hd95
    except ImportError:
        out["hd95_pooled"]["medpy"] = "not installed"
    else:
        t_medpy, v_medpy = timed(lambda: float(medpy_hd95(pred, gt, voxelspacing=SPACING)), max(1, repeats - 1))
        out["hd95_pooled"].update({
            "medpy_s": round(t_medpy, 4), "speedup_vs_medpy": round(t_medpy / t_pooled, 1),
            "medpy_mm": round(v_medpy, 4), "abs_diff_mm": abs(v_pooled - v_medpy),
        })

    if lesion:
        t_les, v_les = timed(lambda: compute_lesion_wise(yp, yt, spacing=SPACING), repeats)
        structure = ndimage.generate_binary_structure(3, 3)
        t_label, _ = timed(lambda: (ndimage.label(pred, structure), ndimage.label(gt, structure)),
                           max(1, repeats - 1))
        out["lesion_wise"] = {
            "ours_s": round(t_les, 4),
            "scipy_ndimage_label_both_masks_s": round(t_label, 4),
            "speedup_vs_full_volume_labelling": round(t_label / t_les, 1),
            "values": {k: round(float(v), 4) for k, v in v_les.items()},
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small volumes for a smoke run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    cases = [((96, 96, 48), 20), ((160, 160, 80), 30)] if args.quick else [((256, 256, 128), 30), ((512, 512, 300), 40)]
    results = {
        "benchmark": "surface distance and lesion-wise metrics",
        "peers": {"hd95_max": "monai.metrics.compute_hausdorff_distance(percentile=95)",
                  "hd95_pooled": "medpy.metric.binary.hd95"},
        "timing": f"median of {args.repeats} runs after one warm-up, same process, float32 (1, 1, *shape) inputs",
        "host": describe_machine(),
        "cases": [run_case(shape, n, args.repeats, lesion=(i == len(cases) - 1)) for i, (shape, n) in
                  enumerate(cases)],
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
