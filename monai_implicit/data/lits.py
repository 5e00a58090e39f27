"""A synthetic LiTS-like CT dataset in the Medical Segmentation Decathlon layout, and a LiTS-layout converter.

The hyper-convolution paper evaluates on LiTS (liver tumour segmentation, seeds/000 Sec. 4.1): contrast-enhanced
abdominal CT in Hounsfield units with labels 0 background, 1 liver, 2 tumour.  The real data cannot ship with the
package, so :func:`make_lits_like_dataset` writes a small phantom dataset with the same *format* (what a pipeline
needs to be exercised end to end):

* MSD Task03_Liver layout: ``imagesTr/liver_N.nii.gz``, ``labelsTr/liver_N.nii.gz`` and a ``dataset.json`` readable by
  ``monai.data.load_decathlon_datalist``;
* int16 CT in Hounsfield units (air -1000, fat about -90, soft tissue about 40, enhanced liver about 100, hypodense
  tumours about 50, bone about 500) with acquisition noise;
* anisotropic voxels that differ between cases (in-plane 1.0-1.4 mm, slices 2.5-4 mm), stored in the NIfTI header
  (qform and sform, millimetres), so spacing normalisation is really exercised;
* uint8 labels 0/1/2, a liver of random shape and one to three tumours inside it.

The original LiTS challenge layout (``volume-N.nii``, ``segmentation-N.nii``) is turned into an MSD-style datalist by
:func:`lits_datalist`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from scipy import ndimage

__all__ = ["LITS_LABELS", "make_lits_like_case", "make_lits_like_dataset", "lits_datalist"]

#: label values of LiTS and MSD Task03_Liver
LITS_LABELS = {"0": "background", "1": "liver", "2": "cancer"}

PathLike = Union[str, os.PathLike]


def _as_triple(value: Union[float, Sequence[float]], name: str) -> tuple[float, float, float]:
    values = (float(value),) * 3 if np.isscalar(value) else tuple(float(v) for v in value)  # type: ignore[union-attr]
    if len(values) != 3 or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{name} must be a positive number or three positive numbers, got {value!r}.")
    return values  # type: ignore[return-value]


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Zero-mean, unit-std random field with correlation length ``sigma`` voxels."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-8)


def make_lits_like_case(
    seed: int,
    fov_mm: Union[float, Sequence[float]] = (160.0, 160.0, 120.0),
    spacing: Optional[Union[float, Sequence[float]]] = None,
    noise_hu: float = 12.0,
    max_tumours: int = 3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One synthetic abdominal CT volume with its liver/tumour label.

    Args:
        seed: seed of this case (the case is a deterministic function of all the arguments).
        fov_mm: physical field of view ``(x, y, z)`` in millimetres.
        spacing: voxel size ``(x, y, z)`` in mm; None draws it per case (in-plane 1.0-1.4 mm, slices 2.5-4 mm),
            the anisotropy range of clinical liver CT.
        noise_hu: standard deviation of the acquisition noise in HU.
        max_tumours: at most this many tumours (at least one).

    Returns:
        ``image`` int16 ``(X, Y, Z)`` in HU, ``label`` uint8 ``(X, Y, Z)`` with values 0/1/2, ``affine`` (4, 4) float64
        (RAS, millimetres; the voxel size is on its diagonal).
    """
    fov = _as_triple(fov_mm, "fov_mm")
    if noise_hu < 0:
        raise ValueError(f"noise_hu must be >= 0, got {noise_hu}.")
    if max_tumours < 1:
        raise ValueError(f"max_tumours must be >= 1, got {max_tumours}.")
    rng = np.random.default_rng(seed)
    if spacing is None:
        inplane = float(rng.uniform(1.0, 1.4))
        spacing_t = (inplane, inplane, float(rng.choice([2.5, 3.0, 4.0])))
    else:
        spacing_t = _as_triple(spacing, "spacing")
    shape = tuple(max(8, int(round(f / s))) for f, s in zip(fov, spacing_t))
    # physical coordinates (mm) of the voxel centres, centred on the volume
    axes = [(np.arange(n, dtype=np.float32) - (n - 1) / 2) * s for n, s in zip(shape, spacing_t)]
    x, y, z = np.meshgrid(*axes, indexing="ij")

    # body: an elliptic cylinder of soft tissue in a fat layer, air outside; a vertebra behind
    body_a, body_b = 0.46 * fov[0] * rng.uniform(0.9, 1.0), 0.40 * fov[1] * rng.uniform(0.9, 1.0)
    body_r = (x / body_a) ** 2 + (y / body_b) ** 2
    image = np.full(shape, -1000.0, dtype=np.float32)
    image[body_r <= 1.0] = -90.0
    image[body_r <= 0.8] = 40.0
    spine = ((x / 12.0) ** 2 + ((y + 0.28 * fov[1]) / 12.0) ** 2) <= 1.0
    image[spine] = 500.0

    # liver: a deformed ellipsoid on the patient's right (image left), cut by the field of view in z like real scans
    centre = np.array([-0.12 * fov[0], 0.02 * fov[1], 0.0]) + rng.uniform(-6, 6, 3)
    semi = np.array([0.24 * fov[0], 0.22 * fov[1], 0.38 * fov[2]]) * rng.uniform(0.85, 1.1, 3)
    radius = np.sqrt(sum(((c - m) / s) ** 2 for c, m, s in zip((x, y, z), centre, semi)))
    # the smoothing length is in voxels; ~20 mm correlation gives lobulated, not noisy, outlines
    deform = _smooth_field(rng, shape, sigma=20.0 / min(spacing_t))
    liver = radius <= 1.0 + 0.12 * deform
    liver &= body_r <= 0.75
    label = liver.astype(np.uint8)
    liver_hu = float(rng.uniform(90.0, 120.0))
    image[liver] = liver_hu

    # tumours: hypodense ellipsoids inside the liver, away from its border
    inside = ndimage.distance_transform_edt(liver, sampling=spacing_t)
    n_tumours = int(rng.integers(1, max_tumours + 1))
    for _ in range(n_tumours):
        r = rng.uniform(6.0, 16.0, 3)  # semi-axes in mm
        candidates = np.argwhere(inside > r.max())
        if len(candidates) == 0:
            candidates = np.argwhere(inside >= inside.max())
        c = candidates[rng.integers(len(candidates))]
        c_mm = np.array([axes[d][c[d]] for d in range(3)])
        tumour = (((x - c_mm[0]) / r[0]) ** 2 + ((y - c_mm[1]) / r[1]) ** 2 + ((z - c_mm[2]) / r[2]) ** 2) <= 1.0
        tumour &= liver
        label[tumour] = 2
        image[tumour] = liver_hu - float(rng.uniform(35.0, 60.0))

    # texture, partial-volume blur and noise, in this order as in a real reconstruction
    image += 8.0 * _smooth_field(rng, shape, sigma=1.5) * (body_r <= 1.0)
    image = ndimage.gaussian_filter(image, sigma=[0.7 * min(spacing_t) / s for s in spacing_t])
    image += rng.normal(0.0, noise_hu, shape).astype(np.float32)
    image = np.clip(np.round(image), -1024, 3071).astype(np.int16)

    affine = np.diag([*spacing_t, 1.0])
    affine[:3, 3] = [-(n - 1) / 2 * s for n, s in zip(shape, spacing_t)]
    return image, label, affine


def _save_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    import nibabel as nib

    img = nib.Nifti1Image(array, affine)
    img.header.set_xyzt_units("mm")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    tmp = path.with_name(path.name + ".part.nii.gz")
    nib.save(img, str(tmp))
    os.replace(tmp, path)  # a reader never sees a half-written volume


def make_lits_like_dataset(
    out_dir: PathLike,
    num_cases: int = 10,
    seed: int = 0,
    fov_mm: Union[float, Sequence[float]] = (160.0, 160.0, 120.0),
    spacing: Optional[Union[float, Sequence[float]]] = None,
    noise_hu: float = 12.0,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic LiTS-like dataset in the MSD Task03_Liver layout and return the path of its dataset.json.

    ``out_dir/imagesTr/liver_N.nii.gz`` (int16 HU), ``out_dir/labelsTr/liver_N.nii.gz`` (uint8 0/1/2) and
    ``out_dir/dataset.json`` (MSD keys: name, labels, modality, numTraining, training, test).  dataset.json is
    written last, so its presence marks a complete dataset.

    Args:
        out_dir: output folder (created).
        num_cases: number of training cases.
        seed: base seed; case ``i`` uses ``seed + i``.
        fov_mm, spacing, noise_hu: see :func:`make_lits_like_case`.
        overwrite: replace an existing dataset.json; otherwise an existing dataset raises FileExistsError.
    """
    if isinstance(num_cases, bool) or not isinstance(num_cases, int) or num_cases < 1:
        raise ValueError(f"num_cases must be a positive integer, got {num_cases!r}.")
    out = Path(out_dir)
    if (out / "dataset.json").exists() and not overwrite:
        raise FileExistsError(f"{out / 'dataset.json'} already exists; pass overwrite=True to replace the dataset.")
    (out / "imagesTr").mkdir(parents=True, exist_ok=True)
    (out / "labelsTr").mkdir(parents=True, exist_ok=True)
    training = []
    for i in range(num_cases):
        image, label, affine = make_lits_like_case(seed + i, fov_mm=fov_mm, spacing=spacing, noise_hu=noise_hu)
        name = f"liver_{i}.nii.gz"
        _save_nifti(image, affine, out / "imagesTr" / name)
        _save_nifti(label, affine, out / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    meta = {
        "name": "SyntheticLiTS",
        "description": "Synthetic LiTS-like abdominal CT phantoms (monai_implicit.data.make_lits_like_dataset)",
        "reference": "Format of the Medical Segmentation Decathlon Task03_Liver",
        "licence": "CC0",
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "labels": dict(LITS_LABELS),
        "numTraining": num_cases,
        "numTest": 0,
        "seed": seed,
        "training": training,
        "test": [],
    }
    tmp = out / "dataset.json.part"
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, out / "dataset.json")
    return out / "dataset.json"


_LITS_NAME = re.compile(r"^(volume|segmentation)-(\d+)\.nii(\.gz)?$")


def lits_datalist(lits_dir: PathLike, out_file: Optional[PathLike] = None) -> Path:
    """Write an MSD-style datalist for data in the original LiTS layout and return its path.

    LiTS ships ``volume-N.nii`` (CT) and ``segmentation-N.nii`` (0 background, 1 liver, 2 tumour), possibly in
    several sub-folders (``Training Batch 1``, ``Training Batch 2``) and possibly gzipped.  Volumes with a
    segmentation go to ``training``, volumes without one (the challenge test set) to ``test``.  Paths are written
    relative to the datalist's folder, which is how ``monai.data.load_decathlon_datalist`` resolves them.

    Args:
        lits_dir: folder searched recursively for ``volume-N.nii[.gz]`` / ``segmentation-N.nii[.gz]``.
        out_file: datalist path; default ``lits_dir/dataset.json``.

    Raises:
        FileNotFoundError: ``lits_dir`` does not exist or holds no LiTS volume.
        ValueError: a segmentation has no volume, or a case number appears twice.
    """
    root = Path(lits_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"LiTS folder {str(root)!r} does not exist or is not a folder.")
    out = Path(out_file) if out_file is not None else root / "dataset.json"
    found: dict[str, dict[int, Path]] = {"volume": {}, "segmentation": {}}
    for path in sorted(root.rglob("*.nii*")):
        match = _LITS_NAME.match(path.name)
        if match is None:
            continue
        kind, number = match.group(1), int(match.group(2))
        if number in found[kind]:
            raise ValueError(f"LiTS case {number} has two {kind} files: {found[kind][number]} and {path}.")
        found[kind][number] = path
    if not found["volume"]:
        raise FileNotFoundError(f"no LiTS volume-N.nii[.gz] file found under {str(root)!r}.")
    orphans = sorted(set(found["segmentation"]) - set(found["volume"]))
    if orphans:
        raise ValueError(f"segmentation files without a volume: {[str(found['segmentation'][n]) for n in orphans]}.")
    base = out.resolve().parent

    def rel(p: Path) -> str:
        return os.path.relpath(p.resolve(), base)

    training, test = [], []
    for number in sorted(found["volume"]):
        if number in found["segmentation"]:
            training.append({"image": rel(found["volume"][number]), "label": rel(found["segmentation"][number])})
        else:
            test.append({"image": rel(found["volume"][number])})
    meta = {
        "name": "LiTS",
        "description": "Liver Tumor Segmentation Challenge (LiTS17), converted by monai_implicit.data.lits_datalist",
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "labels": dict(LITS_LABELS),
        "numTraining": len(training),
        "numTest": len(test),
        "training": training,
        "test": test,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(meta, indent=2))
    return out
