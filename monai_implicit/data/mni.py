"""Real brain anatomy offline: 2D slices of the MNI152 T1 template that nilearn ships as package data.

The hyper-convolution paper reconstructs 2D T1-weighted brain slices from 8x Poisson-disc undersampled k-space.
Real scans cannot ship with this package, but ``nilearn`` (the ``data`` extra: ``pip install 'monai-implicit[data]'``)
installs the ICBM 2009a nonlinear symmetric MNI152 T1 template as a file of its own package
(``nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz``): an average of 152 brains on a 1 mm
grid of 197 x 233 x 189 voxels (x: left-right, y: posterior-anterior, z: inferior-superior), skull-stripped,
background exactly 0. :func:`load_mni152_template` reads that file through
``nilearn.datasets.load_mni152_template(resolution=1)``, which opens the packaged file and never downloads anything.
An average brain is smoother than a single subject's, so it is real anatomy but an easier image than a scan.

:func:`make_mni152_dataset` writes slices in the layout of :func:`~monai_implicit.data.make_phantom_dataset`
(MSD-like, read by ``monai.data.load_decathlon_datalist`` / :func:`monai_implicit.data.load_datalist`)::

    out/imagesTr/mni152_axial_z025.nii.gz    training and validation slices: float32 (H, W) 2D NIfTI
    out/imagesTs/mni152_axial_z101.nii.gz    test slices
    out/dataset.json                         {"training": [{"image": ...}], "validation": [...], "test": [...],
                                              "split": {orientation: {"training": [index, ...], ...}}, ...}

File names carry the orientation and the template voxel index along the fixed axis (axial: z, coronal: y,
sagittal: x). The first image axis is the first remaining template axis (axial: x, y; coronal: x, z;
sagittal: y, z); the affine holds the pixel spacing in mm.

**Which slices** (:func:`mni152_split`). A voxel is brain when its intensity exceeds :data:`BRAIN_THRESHOLD` (0.1 on
the template's [0, 1] scale; the background is exactly 0, the darkest cerebrospinal fluid ~0.15). A slice is kept
when its brain area is at least ``min_brain_fraction`` (default 0.3) of the largest cross-section of that
orientation; near-empty slices at the top of the head and the ends of the brain are skipped. The kept slices form a
contiguous range (axial z 25-140, coronal y 42-191, sagittal x 36-160); every ``slice_step``-th of them is a
candidate (default 2: neighbouring 1 mm slices are nearly identical).

**Held-out split** (no interleaved neighbours). Per orientation, ``num_validation`` consecutive candidates centred at
1/3 of the kept range form the validation slab and ``num_test`` centred at 2/3 the test slab (axial: around
z = 64 and 102 voxels, i.e. -8 and +30 mm MNI; coronal: y = 93 and 143, i.e. -41 and +9 mm). A candidate becomes a
training slice only if it lies at least ``gap_mm`` (default 10 mm) from every held-out slice of its orientation;
the slices inside the gaps are used by no split, and the two held-out slabs are themselves at least ``gap_mm``
apart (a ValueError says so otherwise). The template is exactly left-right symmetric, so a sagittal slice at +x is
the mirror image of the one at -x: sagittal slices are taken from the left hemisphere and the midline only (x index
<= 98). Slices of different orientations cut the same volume: a held-out axial slice shares one line of voxels
with every coronal training slice (and vice versa) but no two-dimensional neighbourhood.

**Size and intensities** (:func:`mni152_slices`). With ``size=None`` a slice is the template's full 1 mm slice
(axial 197 x 233, coronal 197 x 189, sagittal 233 x 189). With ``size=(H, W)`` (64 x 64 for CPU training, 256 x 256
for the paper's setting) the in-plane bounding box of the whole brain in that orientation plus ``margin_mm`` on each
side is padded with zeros, centred, to the aspect ratio H : W (never stretched), then resampled to H x W (MONAI
``Resize``, bilinear, Gaussian anti-aliasing when shrinking). The field of view is the same for every slice of an
orientation, so a small slice near the top of the head stays small. Intensities are float32 on the template's own
scale (nilearn scales the volume to a maximum of 1; no per-slice rescaling), so every slice lies in [0, 1];
with ``noise > 0`` Rician noise ``|x + noise * (n1 + i n2)|`` (seeded per slice by ``(seed, axis, index)``) is added,
as magnitude images have, and values may then exceed 1 by a few ``noise``.

Everything is deterministic: the same arguments give bit-identical files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from monai.config import PathLike
from monai.transforms import Resize
from monai.utils import convert_to_numpy, ensure_tuple, ensure_tuple_rep, look_up_option

from monai_implicit.utils import check_int, is_real

__all__ = [
    "BRAIN_THRESHOLD",
    "MNI152_ORIENTATIONS",
    "MNI152_SHAPE",
    "load_mni152_template",
    "mni152_split",
    "mni152_slices",
    "make_mni152_dataset",
]

#: template axis held fixed by each orientation (template axes: x left-right, y posterior-anterior, z inf.-sup.)
MNI152_ORIENTATIONS = {"axial": 2, "coronal": 1, "sagittal": 0}
#: shape of the 1 mm template nilearn ships
MNI152_SHAPE = (197, 233, 189)
#: a voxel is brain above this intensity (template scale [0, 1]; background 0, darkest CSF ~0.15)
BRAIN_THRESHOLD = 0.1
_AXIS_LETTERS = "xyz"
#: relative position of the held-out slab centres in the kept range of slices (sagittal: in the left hemisphere)
_HOLDOUT_POSITIONS = {"validation": 1.0 / 3.0, "test": 2.0 / 3.0}
_INSTALL_HINT = "pip install 'monai-implicit[data]'"


def load_mni152_template() -> tuple[np.ndarray, tuple[float, float, float]]:
    """The MNI152 T1 template nilearn ships: float32 ``(197, 233, 189)`` in [0, 1] and its voxel size in mm.

    Reads the package file through ``nilearn.datasets.load_mni152_template(resolution=1)`` (no download).

    Raises:
        ImportError: nilearn is not installed (the message names the ``data`` extra).
    """
    try:
        from nilearn.datasets import load_mni152_template as _load
    except ImportError as e:
        raise ImportError(
            f"the MNI152 slices need nilearn, which ships the MNI152 T1 template as package data: {_INSTALL_HINT}."
        ) from e
    img = _load(resolution=1)
    volume = np.array(img.get_fdata(dtype=np.float32), dtype=np.float32)  # a copy: nilearn caches the image
    spacing = tuple(float(s) for s in img.header.get_zooms()[:3])
    if volume.ndim != 3 or not np.all(np.isfinite(volume)):
        raise ValueError(f"nilearn's MNI152 template is not a finite 3D volume (shape {volume.shape}).")
    return volume, spacing  # type: ignore[return-value]


def _check_float(value: object, name: str, low: float = 0.0, high: float = np.inf) -> float:
    if not is_real(value):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}.")
    if not (np.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}.")
    return float(value)


def _check_size(size: Union[int, Sequence[int]]) -> tuple[int, int]:
    try:
        out_hw = tuple(int(s) for s in ensure_tuple_rep(size, 2))
    except (TypeError, ValueError) as e:
        raise ValueError(f"size must be None or one or two sizes >= 16, got {size!r}.") from e
    if min(out_hw) < 16:
        raise ValueError(f"size must be None or one or two sizes >= 16, got {size!r}.")
    return out_hw  # type: ignore[return-value]


def _template(volume: Optional[np.ndarray], spacing: Optional[Sequence[float]]) -> tuple[np.ndarray, tuple[float, ...]]:
    if volume is None:
        return load_mni152_template()
    volume = np.asarray(volume, dtype=np.float32)
    if volume.ndim != 3:
        raise ValueError(f"volume must be a 3D array (x, y, z), got shape {volume.shape}.")
    spacing = (1.0, 1.0, 1.0) if spacing is None else tuple(float(s) for s in spacing)
    if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing must be three positive voxel sizes in mm, got {spacing!r}.")
    return volume, spacing


def mni152_split(
    orientation: str = "axial",
    num_validation: int = 4,
    num_test: int = 4,
    slice_step: int = 2,
    gap_mm: float = 10.0,
    min_brain_fraction: float = 0.3,
    volume: Optional[np.ndarray] = None,
    spacing: Optional[Sequence[float]] = None,
) -> dict[str, list[int]]:
    """Template voxel indices (along the orientation's fixed axis) of the training, validation and test slices.

    Args:
        orientation: ``"axial"``, ``"coronal"`` or ``"sagittal"`` (:data:`MNI152_ORIENTATIONS`).
        num_validation, num_test: slices in the validation / test slab (0: none).
        slice_step: take every ``slice_step``-th slice of the kept range (1: all).
        gap_mm: smallest distance in mm between a training slice and any held-out slice (and between the slabs).
        min_brain_fraction: keep slices whose brain area is at least this fraction of the largest cross-section.
        volume, spacing: the ``(x, y, z)`` volume and its voxel size (default: :func:`load_mni152_template`).

    Returns:
        ``{"training": [...], "validation": [...], "test": [...]}``, sorted indices; see the module docstring.

    Raises:
        ValueError: bad arguments, or the slabs and gaps do not fit in the kept range.
    """
    axis = look_up_option(orientation, MNI152_ORIENTATIONS)
    num_validation = check_int(num_validation, "num_validation", 0)
    num_test = check_int(num_test, "num_test", 0)
    slice_step = check_int(slice_step, "slice_step", 1)
    gap_mm = _check_float(gap_mm, "gap_mm")
    min_brain_fraction = _check_float(min_brain_fraction, "min_brain_fraction", 0.0, 1.0)
    volume, spacing = _template(volume, spacing)
    other = tuple(a for a in range(3) if a != axis)
    area = (volume > BRAIN_THRESHOLD).sum(axis=other)
    if area.max() == 0:
        raise ValueError(f"the volume has no voxel above the brain threshold {BRAIN_THRESHOLD}.")
    kept = np.nonzero(area >= min_brain_fraction * area.max())[0]
    lo, hi = int(kept[0]), int(kept[-1])
    if orientation == "sagittal":  # the symmetric template repeats the left hemisphere mirrored on the right
        hi = min(hi, (volume.shape[0] - 1) // 2)
    candidates = [i for i in range(lo, hi + 1, slice_step) if area[i] >= min_brain_fraction * area.max()]
    step_mm = spacing[axis]
    held: dict[str, list[int]] = {}
    for name, count in (("validation", num_validation), ("test", num_test)):
        if count == 0:
            held[name] = []
            continue
        if count > len(candidates):
            raise ValueError(f"{name}: {count} slices requested, only {len(candidates)} {orientation} candidates.")
        centre = lo + _HOLDOUT_POSITIONS[name] * (hi - lo)
        k = int(np.argmin([abs(c - centre) for c in candidates]))
        start = min(max(k - (count - 1) // 2, 0), len(candidates) - count)
        held[name] = candidates[start : start + count]
    if held["validation"] and held["test"]:
        closest = min(abs(a - b) for a in held["validation"] for b in held["test"]) * step_mm
        if closest < gap_mm:
            raise ValueError(
                f"the {orientation} validation and test slabs are {closest:g} mm apart, less than gap_mm={gap_mm:g}: "
                "use fewer held-out slices, a smaller slice_step or a smaller gap."
            )
    held_out = held["validation"] + held["test"]
    training = [c for c in candidates if all(abs(c - h) * step_mm >= gap_mm for h in held_out)]
    if not training:
        raise ValueError(f"no {orientation} training slice is left at >= {gap_mm:g} mm from the held-out slices.")
    return {"training": training, **held}


def mni152_slices(
    orientation: str,
    indices: Sequence[int],
    size: Union[None, int, Sequence[int]] = 64,
    margin_mm: float = 8.0,
    volume: Optional[np.ndarray] = None,
    spacing: Optional[Sequence[float]] = None,
) -> tuple[np.ndarray, tuple[float, float]]:
    """Slices of the template as float32 ``(N, H, W)`` on the template's intensity scale, and their pixel spacing.

    Args:
        orientation: ``"axial"`` (image axes x, y), ``"coronal"`` (x, z) or ``"sagittal"`` (y, z).
        indices: template voxel indices along the orientation's fixed axis.
        size: ``None`` for the full 1 mm template slice, else ``H`` or ``(H, W)`` (>= 16): the brain's bounding
            box plus ``margin_mm``, zero-padded to the aspect ratio ``H : W`` and resampled (see the module docstring).
        margin_mm: background kept around the brain's bounding box (resampled slices only).
        volume, spacing: the ``(x, y, z)`` volume and its voxel size (default: :func:`load_mni152_template`).

    Returns:
        ``(slices, (spacing_h, spacing_w))`` with the pixel spacing in mm along the two image axes.
    """
    axis = look_up_option(orientation, MNI152_ORIENTATIONS)
    volume, vox = _template(volume, spacing)
    idx = [int(i) for i in ensure_tuple(indices)]
    if not idx or any(not 0 <= i < volume.shape[axis] for i in idx):
        raise ValueError(
            f"indices must be non-empty and within [0, {volume.shape[axis]}) for {orientation}, got {idx}."
        )
    stack = np.moveaxis(volume, axis, 0)
    plane_vox = tuple(vox[a] for a in range(3) if a != axis)
    if size is None:
        return np.ascontiguousarray(stack[idx], dtype=np.float32), plane_vox  # type: ignore[return-value]
    out_hw = _check_size(size)
    margin_mm = _check_float(margin_mm, "margin_mm")
    brain = (stack > BRAIN_THRESHOLD).any(axis=0)
    if not brain.any():
        raise ValueError(f"the volume has no voxel above the brain threshold {BRAIN_THRESHOLD}.")
    # field of view in mm: brain bounding box + margins, grown on one side pair to the aspect ratio H : W
    bounds = [np.nonzero(brain.any(axis=1 - d))[0][[0, -1]] for d in range(2)]
    extent = [(b[1] - b[0] + 1) * plane_vox[d] + 2 * margin_mm for d, b in enumerate(bounds)]
    mm_per_px = max(extent[0] / out_hw[0], extent[1] / out_hw[1])
    window = []
    for d, b in enumerate(bounds):
        n_vox = int(np.ceil(out_hw[d] * mm_per_px / plane_vox[d] - 1e-6))
        start = int(round((b[0] + b[1] + 1) / 2.0 - n_vox / 2.0))
        window.append((start, start + n_vox))
    crop = np.zeros((len(idx), window[0][1] - window[0][0], window[1][1] - window[1][0]), dtype=np.float32)
    # the window may reach outside the template (margins): copy the overlap, the rest stays 0
    (a0, a1), (b0, b1) = [(max(w0, 0), min(w1, stack.shape[d + 1])) for d, (w0, w1) in enumerate(window)]
    (wa, _), (wb, _) = window
    crop[:, a0 - wa : a1 - wa, b0 - wb : b1 - wb] = stack[idx][:, a0:a1, b0:b1]
    # slices as channels of one 2D image: a single resampling call
    resized = Resize(out_hw, mode="bilinear", align_corners=False, anti_aliasing=True)(crop)
    out = np.clip(convert_to_numpy(resized, dtype=np.float32), 0.0, None)
    px = tuple(float(crop.shape[d + 1] * plane_vox[d] / out_hw[d]) for d in range(2))
    return out, px  # type: ignore[return-value]


def _save_nifti_2d(image: np.ndarray, spacing_mm: Sequence[float], path: Path) -> None:
    import nibabel as nib

    affine = np.diag([float(spacing_mm[0]), float(spacing_mm[1]), 1.0, 1.0])
    nii = nib.Nifti1Image(np.asarray(image, dtype=np.float32), affine)
    nii.header.set_xyzt_units("mm")
    nii.set_qform(affine, code=1)
    nii.set_sform(affine, code=1)
    nib.save(nii, str(path))


def make_mni152_dataset(
    out_dir: PathLike,
    size: Union[None, int, Sequence[int]] = 64,
    orientations: Union[str, Sequence[str]] = ("axial", "coronal"),
    num_validation: int = 4,
    num_test: int = 4,
    slice_step: int = 2,
    gap_mm: float = 10.0,
    min_brain_fraction: float = 0.3,
    margin_mm: float = 8.0,
    noise: float = 0.0,
    num_phantoms: int = 0,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write MNI152 template slices as 2D NIfTI magnitude images with a leak-free split; return dataset.json's path.

    Per orientation, training and validation slices go to ``imagesTr/`` (listed under ``"training"`` and
    ``"validation"``), test slices to ``imagesTs/`` (``"test"``); ``dataset.json`` also records the voxel indices of
    every split under ``"split"``. Use the ``"validation"`` list for validation: splitting ``"training"`` at random
    would validate on neighbours of training slices. See the module docstring for the slice selection, the split,
    the field of view and the intensities.

    Args:
        out_dir: output folder.
        size: ``H`` or ``(H, W)`` of every slice (64 for CPU training, 256 for the paper), or None for the full 1 mm
            template slices (their shape then depends on the orientation).
        orientations: any of ``"axial"``, ``"coronal"``, ``"sagittal"``.
        num_validation, num_test: held-out slices per orientation.
        slice_step, gap_mm, min_brain_fraction: see :func:`mni152_split`.
        margin_mm: see :func:`mni152_slices`.
        noise: Rician noise level (0: the template as is), relative to the template's maximum 1.
        num_phantoms: also write this many brain phantoms (:func:`~monai_implicit.data.make_brain_phantom`, same
            size, ``seed``) to ``phantoms/imagesTr/`` and list them under ``"training"`` (a mixed real + synthetic
            training set; validation and test stay real). Needs ``size``.
        seed: seed of the noise and of the phantoms.
        overwrite: replace an existing dataset in ``out_dir``.

    Raises:
        ImportError: nilearn is missing (``pip install 'monai-implicit[data]'``).
        FileExistsError: dataset.json exists and ``overwrite`` is False.
        ValueError: bad arguments.
    """
    names = [look_up_option(o, tuple(MNI152_ORIENTATIONS)) for o in ensure_tuple(orientations)]
    if not names or len(set(names)) != len(names):
        raise ValueError(
            f"orientations must be distinct names among {tuple(MNI152_ORIENTATIONS)}, got {orientations!r}."
        )
    noise = _check_float(noise, "noise")
    num_phantoms = check_int(num_phantoms, "num_phantoms", 0)
    seed = check_int(seed, "seed", 0)
    if size is not None:
        size = _check_size(size)
    if num_phantoms and size is None:
        raise ValueError("num_phantoms > 0 needs a slice size (the phantoms are written at that size).")
    out = Path(out_dir)
    if (out / "dataset.json").exists() and not overwrite:
        raise FileExistsError(f"{out / 'dataset.json'} already exists; pass overwrite=True to replace the dataset.")
    volume, spacing = load_mni152_template()
    splits = {
        o: mni152_split(o, num_validation, num_test, slice_step, gap_mm, min_brain_fraction, volume, spacing)
        for o in names
    }
    items: dict[str, list[dict]] = {"training": [], "validation": [], "test": []}
    record: dict[str, dict] = {}
    for orientation, split in splits.items():
        axis = MNI152_ORIENTATIONS[orientation]
        for part, folder in (("training", "imagesTr"), ("validation", "imagesTr"), ("test", "imagesTs")):
            (out / folder).mkdir(parents=True, exist_ok=True)
            if not split[part]:
                continue
            images, px = mni152_slices(orientation, split[part], size, margin_mm, volume, spacing)
            for index, image in zip(split[part], images):
                if noise > 0:
                    rng = np.random.default_rng((seed, axis, index))
                    n = rng.standard_normal((2, *image.shape))
                    image = np.abs(image + noise * (n[0] + 1j * n[1])).astype(np.float32)
                name = f"mni152_{orientation}_{_AXIS_LETTERS[axis]}{index:03d}.nii.gz"
                _save_nifti_2d(image, px, out / folder / name)
                items[part].append({"image": f"./{folder}/{name}"})
            record.setdefault(orientation, {})["pixel_spacing_mm"] = list(px)
        record[orientation].update({k: list(v) for k, v in split.items()})
    if num_phantoms:
        from monai_implicit.data.phantoms import make_phantom_dataset

        make_phantom_dataset(out / "phantoms", num_images=num_phantoms, num_test=0, shape=size, seed=seed,
                             overwrite=True)  # type: ignore[arg-type]
        items["training"] += [{"image": f"./phantoms/imagesTr/brain_{i:03d}.nii.gz"} for i in range(num_phantoms)]
    meta = {
        "name": "MNI152Slices",
        "description": "2D slices of the MNI152 T1 template shipped by nilearn "
        "(monai_implicit.data.make_mni152_dataset)"
        + (f", plus {num_phantoms} brain phantoms for training" if num_phantoms else ""),
        "reference": "ICBM 2009a nonlinear symmetric MNI152 template (Fonov et al., Unbiased average age-appropriate "
        "atlases for pediatric studies, NeuroImage 2011), as packaged by nilearn",
        "licence": "MNI ICBM152 template: Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, "
        "Montreal Neurological Institute, McGill University; use, copy, modify and distribute with this notice",
        "tensorImageSize": "2D",
        "modality": {"0": "MR-T1"},
        "labels": {},
        "numTraining": len(items["training"]),
        "numValidation": len(items["validation"]),
        "numTest": len(items["test"]),
        "options": {
            "size": None if size is None else list(ensure_tuple_rep(size, 2)),
            "slice_step": slice_step,
            "gap_mm": gap_mm,
            "min_brain_fraction": min_brain_fraction,
            "brain_threshold": BRAIN_THRESHOLD,
            "margin_mm": margin_mm,
            "noise": noise,
            "num_phantoms": num_phantoms,
            "seed": seed,
        },
        "split": record,
        **items,
    }
    tmp = out / "dataset.json.part"
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, out / "dataset.json")
    return out / "dataset.json"
