"""A synthetic LiTS-like CT dataset in the Medical Segmentation Decathlon layout, and a LiTS-layout converter.

The hyper-convolution paper evaluates on LiTS (liver tumour segmentation; *Hyper-Convolutions via Implicit Kernels
for Medical Imaging*, Sec. 4.1): contrast-enhanced abdominal CT in Hounsfield units with labels 0 background,
1 liver, 2 tumour.  The real data cannot ship with the package, so :func:`make_lits_like_dataset` writes phantoms
with the same *format* and a task that needs learning:

* MSD Task03_Liver layout: ``imagesTr/liver_N.nii.gz``, ``labelsTr/liver_N.nii.gz`` and a ``dataset.json`` readable by
  ``monai.data.load_decathlon_datalist``;
* int16 portal-venous CT in Hounsfield units with the liver's neighbours (heart, spleen, kidneys, stomach, pancreas,
  colon, bowel, aorta, inferior vena cava, abdominal wall), several of which share the liver's HU range and touch
  it, so that a threshold and the largest connected component does not find the liver (see
  :func:`make_lits_like_case`);
* 1-6 hypodense tumours per case of 5-40 mm, 20-80 HU below the liver; CT-like noise of 10-25 HU;
* anisotropic voxels that differ between cases (in-plane 0.9-1.3 mm, slices 2-4 mm), stored in the NIfTI header
  (qform and sform, millimetres), so spacing normalisation is really exercised;
* uint8 labels 0/1/2 (the liver label includes its vessels, as in LiTS).

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
from monai.config import PathLike
from scipy import ndimage

from monai_implicit.utils import check_positive_int

__all__ = ["LITS_LABELS", "make_lits_like_case", "make_lits_like_dataset", "lits_datalist"]

#: label values of LiTS and MSD Task03_Liver
LITS_LABELS = {"0": "background", "1": "liver", "2": "cancer"}



def _as_triple(value: Union[float, Sequence[float]], name: str) -> tuple[float, float, float]:
    values = (float(value),) * 3 if np.isscalar(value) else tuple(float(v) for v in value)  # type: ignore[union-attr]
    if len(values) != 3 or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{name} must be a positive number or three positive numbers, got {value!r}.")
    return values  # type: ignore[return-value]


def _centred_axes(fov: Sequence[float], spacing: Sequence[float]) -> tuple[tuple[int, ...], list[np.ndarray]]:
    """The shape of the voxel grid covering ``fov`` mm at ``spacing`` mm (at least 8 voxels per axis) and, per axis,
    the physical coordinates (mm) of its voxel centres, centred on the volume."""
    shape = tuple(max(8, int(round(f / s))) for f, s in zip(fov, spacing))
    return shape, [(np.arange(n, dtype=np.float32) - (n - 1) / 2) * s for n, s in zip(shape, spacing)]


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Zero-mean, unit-std random field with correlation length ``sigma`` voxels."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-8)


def _coarse_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Zero-mean, unit-std random field with correlation length ``sigma`` voxels, drawn on a coarser grid.

    The same kind of field as :func:`_smooth_field` at a fraction of the cost for long correlation lengths: white
    noise on a grid ``sigma / 2`` times coarser is smoothed there and interpolated (linearly) back to ``shape``.
    """
    factor = max(1.0, sigma / 2.0)
    coarse = tuple(max(2, int(np.ceil(n / factor)) + 1) for n in shape)
    field = ndimage.gaussian_filter(rng.standard_normal(coarse).astype(np.float32), sigma / factor, mode="wrap")
    # linear interpolation with corners aligned (the coarse grid spans exactly the volume); torch's is ~20x faster
    # than scipy.ndimage.zoom here, and this is most of a case's generation time
    import torch

    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(shape)]
    field = torch.nn.functional.interpolate(torch.from_numpy(field)[None, None], size=tuple(shape), mode=mode,
                                            align_corners=True)[0, 0].numpy()
    return (field - field.mean()) / (field.std() + 1e-8)


def make_lits_like_case(
    seed: int,
    fov_mm: Union[float, Sequence[float]] = (160.0, 160.0, 120.0),
    spacing: Optional[Union[float, Sequence[float]]] = None,
    noise_hu: Optional[float] = None,
    max_tumours: int = 6,
    tumour_diameter_mm: tuple[float, float] = (5.0, 40.0),
    tumour_contrast_hu: tuple[float, float] = (20.0, 80.0),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One synthetic portal-venous abdominal CT volume with its liver/tumour label.

    The anatomy is built so that intensity alone cannot find the liver (a threshold on the liver's HU range plus the
    largest connected component reaches a liver Dice of about 0.5; see the hyperunet_lits bundle docs):

    * a body of subcutaneous fat, an abdominal wall of muscle (55-80 HU) that the liver touches, intra-abdominal fat
      filled with bowel loops whose enhancing walls (60-110 HU) overlap the liver's range, fluid or air content;
    * the spine (cortical and cancellous bone), psoas muscles, the aorta (150-220 HU) and the inferior vena cava
      (110-160 HU) running along the liver;
    * the liver (95-130 HU, +-10 HU perfusion heterogeneity, brighter hepatic/portal vessels labelled liver as in
      LiTS) on the patient's right (+x in RAS) with a left lobe crossing the midline, of random size, shape, rotation
      and position, touching the heart above the diaphragm (myocardium -20..+10 HU from the liver), the stomach, the
      right kidney (cortex 140-200, medulla 90-130 HU), the pancreas and the colon at the hepatic flexure (both of
      liver-like HU), and a spleen of the liver's HU +-15; a fluid-filled gallbladder in 60 % of the cases;
    * 1 to ``max_tumours`` hypodense tumours of log-uniform diameter in ``tumour_diameter_mm`` with
      ``tumour_contrast_hu`` less attenuation than the liver, inside the liver;
    * partial-volume blur and Gaussian noise of ``noise_hu`` (drawn from 10-25 HU per case when None).

    Args:
        seed: seed of this case (the case is a deterministic function of all the arguments).
        fov_mm: physical field of view ``(x, y, z)`` in millimetres.
        spacing: voxel size ``(x, y, z)`` in mm; None draws it per case (in-plane 0.9-1.3 mm, slices 2-4 mm),
            the anisotropy range of clinical liver CT.
        noise_hu: standard deviation of the acquisition noise in HU; None draws 10-25 HU.
        max_tumours: at most this many tumours (at least one).
        tumour_diameter_mm: range of the tumour diameters (log-uniform).
        tumour_contrast_hu: range of the liver-minus-tumour attenuation difference.

    Returns:
        ``image`` int16 ``(X, Y, Z)`` in HU, ``label`` uint8 ``(X, Y, Z)`` with values 0/1/2, ``affine`` (4, 4) float64
        (RAS, millimetres; the voxel size is on its diagonal).
    """
    fov = _as_triple(fov_mm, "fov_mm")
    if noise_hu is not None and not (np.isfinite(noise_hu) and noise_hu >= 0):
        raise ValueError(f"noise_hu must be a finite number >= 0 (or None), got {noise_hu}.")
    check_positive_int(max_tumours, "max_tumours")
    for name, (lo, hi) in (("tumour_diameter_mm", tumour_diameter_mm), ("tumour_contrast_hu", tumour_contrast_hu)):
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo <= hi):
            raise ValueError(f"{name} must be a range (low, high) with 0 < low <= high, got {(lo, hi)!r}.")
    rng = np.random.default_rng(seed)
    if spacing is None:
        inplane = float(rng.uniform(0.9, 1.3))
        spacing_t = (inplane, inplane, float(rng.choice([2.0, 2.5, 3.0, 4.0])))
    else:
        spacing_t = _as_triple(spacing, "spacing")
    noise = float(rng.uniform(10.0, 25.0)) if noise_hu is None else float(noise_hu)
    # physical coordinates (mm) of the voxel centres, centred on the volume; RAS: +x patient's right, +y anterior
    shape, axes = _centred_axes(fov, spacing_t)
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    fx, fy, fz = fov
    rough_sigma = 12.0 / min(spacing_t)  # ~12 mm correlation: lobulated outlines, not noisy ones

    def ellipsoid(centre: Sequence[float], semi: Sequence[float], rough: float = 0.0, angle: float = 0.0) -> np.ndarray:
        c, s = np.cos(angle), np.sin(angle)
        dx, dy, dz = x - centre[0], y - centre[1], z - centre[2]
        u, v = c * dx + s * dy, -s * dx + c * dy
        r = np.sqrt((u / semi[0]) ** 2 + (v / semi[1]) ** 2 + (dz / semi[2]) ** 2)
        if rough:
            r = r - rough * _coarse_field(rng, shape, rough_sigma)
        return np.broadcast_to(r <= 1.0, shape)

    def tube(cx: float, cy: float, radius: float) -> np.ndarray:  # a vessel along z, wandering a little
        wobble = 3.0 * np.sin(z / 25.0 + rng.uniform(0, 2 * np.pi))
        return np.broadcast_to(((x - cx - wobble) ** 2 + (y - cy) ** 2) <= radius**2, shape)

    # body: fat, abdominal wall muscle, intra-abdominal fat with bowel loops
    body_r = np.sqrt((x / (0.47 * fx * rng.uniform(0.92, 1.0))) ** 2 + (y / (0.40 * fy * rng.uniform(0.92, 1.0))) ** 2)
    body_r = np.broadcast_to(body_r, shape)
    image = np.full(shape, -1000.0, dtype=np.float32)
    fat_hu = float(rng.uniform(-110, -80))
    image[body_r <= 1.0] = fat_hu
    muscle_hu = float(rng.uniform(55, 80))
    image[(body_r <= 0.93) & (body_r > 0.86)] = muscle_hu
    inner = body_r <= 0.86
    image[inner] = fat_hu + 40.0
    loops = _coarse_field(rng, shape, 5.0 / min(spacing_t))
    image[(loops > 0.35) & inner] = float(rng.uniform(60, 110))
    image[(loops > 1.0) & inner] = float(rng.uniform(-10, 30)) if rng.random() < 0.7 else -800.0

    # spine, psoas, aorta, IVC
    sy = -0.30 * fy
    psoas = ((((np.abs(x) - 24.0) / 11.0) ** 2 + ((y - sy - 2) / 10.0) ** 2) <= 1.0) & (z < 0.1 * fz)
    image[np.broadcast_to(psoas, shape)] = muscle_hu
    image[np.broadcast_to(((x / 13.0) ** 2 + ((y - sy) / 12.0) ** 2) <= 1.0, shape)] = float(rng.uniform(350, 550))
    image[np.broadcast_to(((x / 7.0) ** 2 + ((y - sy) / 6.0) ** 2) <= 1.0, shape)] = float(rng.uniform(150, 250))
    aorta = tube(-0.06 * fx, sy + 22.0, rng.uniform(7.0, 10.0))
    ivc = tube(0.10 * fx, sy + 24.0, rng.uniform(8.0, 11.0))

    # liver: right lobe + left lobe across the midline, random size, shape, rotation and position
    centre = np.array([0.17 * fx, 0.02 * fy, 0.08 * fz]) + rng.uniform(-8, 8, 3)
    semi = np.array([0.22 * fx, 0.25 * fy, 0.36 * fz]) * rng.uniform(0.8, 1.12, 3)
    liver = ellipsoid(centre, semi, rough=0.15, angle=rng.uniform(-0.35, 0.35)).copy()
    lobe_c = centre + np.array([-0.95 * semi[0], 0.3 * semi[1], 0.25 * semi[2]])
    liver |= ellipsoid(lobe_c, semi * np.array([0.9, 0.45, 0.5]), rough=0.15)
    liver &= body_r <= 0.88  # it touches the abdominal wall, as in patients
    liver &= ~ellipsoid((0, sy, 0), (24, 22, 1e4))
    liver_hu = float(rng.uniform(95.0, 130.0))

    # neighbours whose HU overlap the liver's
    spleen = ellipsoid((-0.2 * fx + rng.uniform(-6, 6), -0.02 * fy, 0.16 * fz),
                       np.array([0.11 * fx, 0.17 * fy, 0.24 * fz]) * rng.uniform(0.8, 1.2, 3), rough=0.1,
                       angle=rng.uniform(-0.5, 0.5))
    kidneys = [
        ellipsoid((side * 0.19 * fx, sy + 18.0, -0.18 * fz + rng.uniform(-8, 8)),
                  np.array([0.06 * fx, 0.08 * fy, 0.20 * fz]) * rng.uniform(0.85, 1.15, 3), rough=0.05,
                  angle=side * 0.4)
        for side in (1, -1)
    ]
    stomach = ellipsoid((-0.12 * fx, 0.16 * fy, 0.22 * fz),
                        np.array([0.12 * fx, 0.10 * fy, 0.16 * fz]) * rng.uniform(0.8, 1.2, 3), rough=0.1)
    wall_vox = max(1, int(round(4.0 / min(spacing_t))))
    gallbladder = (
        ellipsoid(centre + np.array([-0.3 * semi[0], 0.55 * semi[1], -0.55 * semi[2]]), (12.0, 14.0, 22.0), rough=0.05)
        if rng.random() < 0.6 else np.zeros(shape, bool)
    )
    heart = ellipsoid((-0.02 * fx, 0.06 * fy, 0.58 * fz),
                      np.array([0.30 * fx, 0.26 * fy, 0.32 * fz]) * rng.uniform(0.9, 1.1, 3), rough=0.05)
    blood = ellipsoid((-0.02 * fx, 0.06 * fy, 0.64 * fz), np.array([0.17 * fx, 0.14 * fy, 0.24 * fz]), rough=0.1)
    pancreas = ellipsoid((-0.02 * fx, -0.02 * fy, -0.02 * fz),
                         np.array([0.22 * fx, 0.05 * fy, 0.06 * fz]) * rng.uniform(0.85, 1.15, 3), rough=0.2,
                         angle=rng.uniform(-0.3, 0.3))

    # paint back to front; the liver gives way where another organ lies
    kidney = kidneys[0] | kidneys[1]
    image[kidney] = float(rng.uniform(140, 200))
    medulla_hu = float(rng.uniform(90, 130))
    for k in kidneys:
        image[ndimage.binary_erosion(k, iterations=max(1, int(round(5.0 / min(spacing_t)))))] = medulla_hu
    image[pancreas] = liver_hu + float(rng.uniform(-20, 5))
    image[heart] = liver_hu + float(rng.uniform(-20, 10))
    image[blood & heart] = float(rng.uniform(140, 200))
    image[spleen] = liver_hu + float(rng.uniform(-15, 15))
    image[stomach] = float(rng.uniform(70, 110))
    image[ndimage.binary_erosion(stomach, iterations=wall_vox)] = (
        float(rng.uniform(0, 25)) if rng.random() < 0.7 else -900.0
    )
    liver &= ~(kidney | spleen | stomach | pancreas | heart)
    image[liver] = liver_hu + 10.0 * _coarse_field(rng, shape, 15.0 / min(spacing_t))[liver]
    flexure = ellipsoid(centre + np.array([0.1 * semi[0], 0.1 * semi[1], -0.95 * semi[2]]),
                        (0.45 * semi[0], 0.4 * semi[1], 16.0), rough=0.1)
    image[flexure & ~liver] = liver_hu + float(rng.uniform(-30, 0))
    vessels = (np.abs(_coarse_field(rng, shape, 6.0 / min(spacing_t))) < 0.08) & liver
    image[vessels] = liver_hu + float(rng.uniform(25, 60))
    image[ivc] = float(rng.uniform(110, 160))
    image[aorta] = float(rng.uniform(150, 220))
    image[gallbladder] = float(rng.uniform(0, 25))
    liver &= ~(ivc | gallbladder)
    label = liver.astype(np.uint8)

    # tumours inside the liver (one voxel from its border, so each one is surrounded by liver)
    core = ndimage.binary_erosion(liver)
    inside = ndimage.distance_transform_edt(liver, sampling=spacing_t)
    log_lo, log_hi = np.log(tumour_diameter_mm[0]), np.log(tumour_diameter_mm[1])
    for _ in range(int(rng.integers(1, max_tumours + 1))):
        r = float(np.exp(rng.uniform(log_lo, log_hi))) / 2 * rng.uniform(0.8, 1.2, 3)
        candidates = np.argwhere(inside > 0.6 * r.max())
        if len(candidates) == 0:
            candidates = np.argwhere(inside >= inside.max())
        c = candidates[rng.integers(len(candidates))]
        tumour = ellipsoid([axes[d][c[d]] for d in range(3)], r, rough=0.08) & core
        label[tumour] = 2
        image[tumour] = liver_hu - float(rng.uniform(*tumour_contrast_hu))

    # texture, partial-volume blur and noise, in this order as in a real reconstruction
    image += 6.0 * _smooth_field(rng, shape, sigma=1.5) * (body_r <= 1.0)
    image = ndimage.gaussian_filter(image, sigma=[0.7 * min(spacing_t) / s for s in spacing_t])
    image += rng.normal(0.0, noise, shape).astype(np.float32)
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
    noise_hu: Optional[float] = None,
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
    check_positive_int(num_cases, "num_cases")
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
