"""A synthetic left-atrium MRI dataset in the Medical Segmentation Decathlon Task02_Heart layout.

The NeRD paper's second experiment segments the left atrium (LA) in 3D cardiac MRI ("NeRD: Neural Representation of
Distribution for Medical Image Segmentation", Sec. 3.1, Table 2; the N-Jet U-Net bundle uses the same task). MSD
Task02_Heart is that data (the 2013 LA segmentation challenge, bSSFP MRI at 1.25 x 1.25 x 1.37 mm, labels 0 background /
1 left atrium). It cannot ship with the package, so :func:`make_la_like_dataset` writes small phantoms with the same
*format*:

* MSD layout: ``imagesTr/la_NNN.nii.gz``, ``labelsTr/la_NNN.nii.gz`` and a ``dataset.json`` readable by
  ``monai.data.load_decathlon_datalist``;
* int16 MRI-like magnitudes (no physical unit, arbitrary per-scan gain): bright blood pools (bSSFP), darker
  myocardium, bright fat, dark lungs, a smooth multiplicative coil bias field and Rician noise;
* an anatomy where intensity alone cannot find the atrium: the left atrium (a lobulated blob behind the left
  ventricle) with four pulmonary-vein-like tubes leaving it posterolaterally, next to other bright blood pools of
  the same intensity (left and right ventricles, right atrium, ascending and descending aorta);
* the label is the atrium body plus the proximal part of each vein (the veins continue, unlabelled, in the image),
  the usual convention of LA ground truths.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence, Union

import numpy as np
from monai.config import PathLike
from scipy import ndimage

from monai_implicit.data.lits import _as_triple, _centred_axes, _save_nifti, _smooth_field
from monai_implicit.utils import check_int

__all__ = ["LA_LABELS", "make_la_like_case", "make_la_like_dataset"]

#: label values of MSD Task02_Heart
LA_LABELS = {"0": "background", "1": "left atrium"}


# bSSFP-like magnitudes relative to blood
_INTENSITY = {"fat": 0.85, "muscle": 0.30, "lung": 0.04, "myocardium": 0.28, "blood": 1.0, "bone": 0.45}


def _tube(coords: Sequence[np.ndarray], start: np.ndarray, direction: np.ndarray, length: float, radius: float,
          ) -> tuple[np.ndarray, np.ndarray]:
    """Mask of a straight tube (capsule without caps) and the position of every voxel along its axis (mm)."""
    direction = direction / np.linalg.norm(direction)
    rel = [c - s for c, s in zip(coords, start)]
    t = sum(r * d for r, d in zip(rel, direction))
    perp2 = sum(r**2 for r in rel) - t**2
    return (perp2 <= radius**2) & (t >= 0) & (t <= length), t


def make_la_like_case(
    seed: int,
    fov_mm: Union[float, Sequence[float]] = (200.0, 200.0, 110.0),
    spacing: Union[float, Sequence[float]] = (1.25, 1.25, 1.37),
    noise: float = 0.04,
    labelled_vein_mm: float = 8.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One synthetic cardiac MRI volume with its left-atrium label.

    Args:
        seed: seed of this case (the case is a deterministic function of all the arguments).
        fov_mm: physical field of view ``(x, y, z)`` in mm (x right-left, y posterior-anterior, z inferior-superior).
        spacing: voxel size ``(x, y, z)`` in mm (MSD Task02_Heart: 1.25 x 1.25 x 1.37).
        noise: standard deviation of each complex noise component relative to blood.
        labelled_vein_mm: length of every pulmonary vein included in the label, from the atrium wall.

    Returns:
        ``image`` int16 ``(X, Y, Z)``, ``label`` uint8 ``(X, Y, Z)`` with values 0/1,
        ``affine`` (4, 4) float64 (RAS, mm).
    """
    fov = _as_triple(fov_mm, "fov_mm")
    spacing_t = _as_triple(spacing, "spacing")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}.")
    if labelled_vein_mm < 0:
        raise ValueError(f"labelled_vein_mm must be >= 0, got {labelled_vein_mm}.")
    rng = np.random.default_rng(seed)
    shape, axes = _centred_axes(fov, spacing_t)
    coords = np.meshgrid(*axes, indexing="ij")
    x, y, z = coords

    def ellipsoid(centre: Sequence[float], semi: Sequence[float], roughness: float = 0.0) -> np.ndarray:
        r = np.sqrt(sum(((c - m) / s) ** 2 for c, m, s in zip(coords, centre, semi)))
        return r <= 1.0 + roughness * deform

    deform = _smooth_field(rng, shape, sigma=8.0 / min(spacing_t))
    image = np.full(shape, 0.0, dtype=np.float32)
    # torso: fat layer, muscle, lungs either side of the mediastinum, a vertebra behind
    torso = ((x / (0.47 * fov[0])) ** 2 + (y / (0.38 * fov[1])) ** 2) <= 1.0
    image[torso] = _INTENSITY["fat"]
    inner = ((x / (0.47 * fov[0] - 10.0)) ** 2 + (y / (0.38 * fov[1] - 10.0)) ** 2) <= 1.0
    image[inner] = _INTENSITY["muscle"]
    for side in (-1.0, 1.0):
        lung_semi = (0.19 * fov[0], 0.27 * fov[1], 0.9 * fov[2])
        lung = ellipsoid((side * 0.22 * fov[0], -0.02 * fov[1], 0.0), lung_semi, 0.05)
        image[lung & inner] = _INTENSITY["lung"]
    spine = (x / 14.0) ** 2 + ((y + 0.30 * fov[1]) / 14.0) ** 2 <= 1.0
    image[spine] = _INTENSITY["bone"]

    # heart: the centre is jittered so that position alone does not find the atrium
    h = np.array([rng.uniform(-8, 8) + 0.05 * fov[0], rng.uniform(-6, 6) + 0.02 * fov[1], rng.uniform(-8, 8)])
    heart = ellipsoid(h + [8.0, 12.0, -10.0], (55.0, 50.0, 48.0), 0.04)
    image[heart] = _INTENSITY["myocardium"]
    pools = {
        "lv": (h + [18.0, 20.0, -18.0], np.array([22.0, 18.0, 26.0])),
        "rv": (h + [-14.0, 30.0, -16.0], np.array([18.0, 14.0, 24.0])),
        "ra": (h + [-24.0, 2.0, 0.0], np.array([17.0, 16.0, 18.0])),
    }
    for centre, semi in pools.values():
        image[ellipsoid(centre, semi * rng.uniform(0.85, 1.15, 3), 0.05)] = _INTENSITY["blood"]
    # aorta: ascending from the left ventricle, arch, descending beside the spine
    asc, _ = _tube(coords, h + [0.0, 18.0, -6.0], np.array([-0.1, -0.1, 1.0]), 70.0, rng.uniform(11.0, 14.0))
    desc, _ = _tube(coords, np.array([14.0, -0.25 * fov[1] + 10.0, -fov[2]]), np.array([0.0, 0.05, 1.0]),
                    2.0 * fov[2], rng.uniform(9.0, 11.0))
    image[asc | desc] = _INTENSITY["blood"]

    # left atrium: posterior and superior to the left ventricle, lobulated
    la_centre = h + [12.0, -18.0, 14.0] + rng.uniform(-4, 4, 3)
    la_semi = np.array([24.0, 15.0, 17.0]) * rng.uniform(0.85, 1.2, 3)
    label = ellipsoid(la_centre, la_semi, 0.08)
    # four pulmonary veins leaving the atrium posterolaterally (two per side, superior and inferior)
    veins = np.zeros(shape, dtype=bool)
    for side in (-1.0, 1.0):
        for level in (-1.0, 1.0):
            direction = np.array([side * rng.uniform(0.6, 1.0), -rng.uniform(0.4, 0.8), level * rng.uniform(0.1, 0.4)])
            direction /= np.linalg.norm(direction)
            start = la_centre + direction * la_semi * 0.6
            radius = rng.uniform(4.0, 6.5)
            tube, t = _tube(coords, start, direction, rng.uniform(25.0, 40.0), radius)
            veins |= tube
            # the wall sits ~0.4 of the semi-axis from the start along the tube
            wall = float(np.linalg.norm(direction * la_semi * 0.4))
            label |= tube & (t <= wall + labelled_vein_mm)
    image[label | veins] = _INTENSITY["blood"]
    label &= ~spine

    # texture, coil bias field, partial-volume blur, complex noise, per-scan gain
    image += 0.04 * _smooth_field(rng, shape, sigma=1.5) * torso
    bias = np.exp(0.25 * _smooth_field(rng, shape, sigma=60.0 / min(spacing_t)) + 0.004 * y)
    image = ndimage.gaussian_filter(image * bias, sigma=[0.6 * min(spacing_t) / s for s in spacing_t])
    real = image + rng.normal(0.0, noise, shape)
    imag = rng.normal(0.0, noise, shape)
    image = np.sqrt(real**2 + imag**2) * rng.uniform(500.0, 900.0)
    image = np.clip(np.round(image), 0, 32767).astype(np.int16)

    affine = np.diag([*spacing_t, 1.0])
    affine[:3, 3] = [-(n - 1) / 2 * s for n, s in zip(shape, spacing_t)]
    return image, label.astype(np.uint8), affine


def make_la_like_dataset(
    out_dir: PathLike,
    num_cases: int = 12,
    seed: int = 0,
    fov_mm: Union[float, Sequence[float]] = (200.0, 200.0, 110.0),
    spacing: Union[float, Sequence[float]] = (1.25, 1.25, 1.37),
    noise: float = 0.04,
    num_test: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic left-atrium dataset in the MSD Task02_Heart layout; return the path of its dataset.json.

    ``out_dir/imagesTr/la_NNN.nii.gz`` (int16), ``out_dir/labelsTr/la_NNN.nii.gz`` (uint8 0/1), optionally
    ``out_dir/imagesTs/la_NNN.nii.gz`` (unlabelled test cases) and ``out_dir/dataset.json`` (MSD keys: name,
    labels, modality, numTraining, numTest, training, test).  dataset.json is written last, so its presence marks a
    complete dataset.

    Args:
        out_dir: output folder (created).
        num_cases: number of training cases.
        seed: base seed; case ``i`` uses ``seed + i``.
        fov_mm, spacing, noise: see :func:`make_la_like_case`.
        num_test: number of additional unlabelled cases in ``imagesTs``.
        overwrite: replace an existing dataset.json; otherwise an existing dataset raises FileExistsError.
    """
    for name, value, low in (("num_cases", num_cases, 1), ("num_test", num_test, 0)):
        check_int(value, name, low)
    out = Path(out_dir)
    if (out / "dataset.json").exists() and not overwrite:
        raise FileExistsError(f"{out / 'dataset.json'} already exists; pass overwrite=True to replace the dataset.")
    training, test = [], []
    for i in range(num_cases + num_test):
        image, label, affine = make_la_like_case(seed + i, fov_mm=fov_mm, spacing=spacing, noise=noise)
        name = f"la_{i + 1:03d}.nii.gz"
        if i < num_cases:
            (out / "imagesTr").mkdir(parents=True, exist_ok=True)
            (out / "labelsTr").mkdir(parents=True, exist_ok=True)
            _save_nifti(image, affine, out / "imagesTr" / name)
            _save_nifti(label, affine, out / "labelsTr" / name)
            training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
        else:
            (out / "imagesTs").mkdir(parents=True, exist_ok=True)
            _save_nifti(image, affine, out / "imagesTs" / name)
            test.append(f"./imagesTs/{name}")
    meta = {
        "name": "SyntheticLeftAtrium",
        "description": "Synthetic left-atrium MRI phantoms (monai_implicit.data.make_la_like_dataset)",
        "reference": "Format of the Medical Segmentation Decathlon Task02_Heart",
        "licence": "CC0",
        "tensorImageSize": "3D",
        "modality": {"0": "MRI"},
        "labels": dict(LA_LABELS),
        "numTraining": num_cases,
        "numTest": num_test,
        "seed": seed,
        "training": training,
        "test": test,
    }
    tmp = out / "dataset.json.part"
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, out / "dataset.json")
    return out / "dataset.json"
