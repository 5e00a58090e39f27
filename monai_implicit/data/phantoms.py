"""Smooth brain-like 2D MR magnitude phantoms for CS-MRI reconstruction, written as a NIfTI dataset.

The hyper-convolution paper reconstructs 256x256 T1-weighted brain slices from 8x Poisson-disk undersampled k-space
("Hyper-Convolutions via Implicit Kernels for Medical Imaging", Sec. 4.3). Real brain MRI cannot ship with the package,
so :func:`make_brain_phantom` draws axial slices with the structure that matters to reconstruction: T1-like contrast
between scalp fat (bright), skull (dark), cerebrospinal fluid (dark), grey matter (grey) and white matter (bright); a
folded grey/white boundary with sulci; lateral ventricles and deep grey nuclei; a smooth coil-sensitivity (bias) field;
partial-volume blurring and a low noise floor (Rician, as magnitude images have). Every slice has its own anatomy, pose
and size.

:func:`make_phantom_dataset` writes them in an MSD-like layout read by ``monai.data.load_decathlon_datalist``::

    out/imagesTr/brain_000.nii.gz   float32 (H, W) fully sampled magnitude in [0, 1], 2D NIfTI with pixel spacing
    out/imagesTs/brain_test_000.nii.gz
    out/dataset.json                {"training": [{"image": ...}], "test": [...], ...}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence, Union

import numpy as np
from monai.config import PathLike
from scipy import ndimage

from monai_implicit.utils import check_int

__all__ = ["PHANTOM_INTENSITIES", "make_brain_phantom", "make_phantom_dataset"]


#: T1-weighted relative intensities of the phantom tissues (before bias field, blur and noise)
PHANTOM_INTENSITIES = {"fat": 0.95, "skull": 0.08, "csf": 0.18, "grey": 0.55, "white": 0.82, "nuclei": 0.62}


def _as_shape(shape: Union[int, Sequence[int]]) -> tuple[int, int]:
    dims = (int(shape), int(shape)) if np.isscalar(shape) else tuple(int(s) for s in shape)  # type: ignore[union-attr]
    if len(dims) != 2 or min(dims) < 16:
        raise ValueError(f"shape must be one or two sizes >= 16 (a 2D slice), got {shape!r}.")
    return dims  # type: ignore[return-value]


def _harmonics(rng: np.random.Generator, theta: np.ndarray, orders: Sequence[int], amplitude: float) -> np.ndarray:
    """A random smooth periodic function of the angle: ``sum_k a_k cos(k theta + phi_k)``, ``|a_k| <= amplitude``."""
    out = np.zeros_like(theta)
    for k in orders:
        out += rng.uniform(-amplitude, amplitude) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return out


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, a: float, b: float, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    u, v = (x - cx) * c + (y - cy) * s, -(x - cx) * s + (y - cy) * c
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def make_brain_phantom(
    seed: int,
    shape: Union[int, Sequence[int]] = 128,
    noise: float = 0.01,
    bias: float = 0.15,
    blur: float = 0.6,
    texture: float = 0.03,
) -> np.ndarray:
    """One axial brain-like T1 magnitude slice, float32 ``(H, W)`` scaled to max 1.

    Args:
        seed: seed of this slice (anatomy, pose, bias field and noise); the global RNG is never used.
        shape: slice size ``H`` or ``(H, W)`` (>= 16).
        noise: standard deviation of the complex Gaussian noise before taking the magnitude (relative to max 1).
        bias: peak-to-peak amplitude of the smooth multiplicative bias field (0 for none).
        blur: Gaussian partial-volume blur in pixels (0 for none).
        texture: relative amplitude of a smooth random tissue texture inside the brain (0 for none).

    The tissues are nested contours ``rho = r(theta)`` in normalised head coordinates, each radius modulated by
    random low-order harmonics (head shape) and, for the grey/white boundary, high-order ones (gyri).
    """
    h, w = _as_shape(shape)
    for name, value in (("noise", noise), ("bias", bias), ("blur", blur), ("texture", texture)):
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a non-negative number, got {value!r}.")
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w) * (w / h), indexing="ij")
    cx, cy = rng.uniform(-0.04, 0.04, size=2)
    a, b = rng.uniform(0.68, 0.80), rng.uniform(0.80, 0.92)  # half-axes of the head (left-right, front-back)
    angle = rng.uniform(-0.15, 0.15)
    c, s = np.cos(angle), np.sin(angle)
    u, v = ((xx - cx) * c + (yy - cy) * s) / a, (-(xx - cx) * s + (yy - cy) * c) / b
    rho, theta = np.hypot(u, v), np.arctan2(v, u)
    shape_mod = 1.0 + _harmonics(rng, theta, (2, 3, 4), 0.03)
    r_head = shape_mod
    r_skull = 0.93 * shape_mod
    r_csf = 0.86 * shape_mod
    r_brain = 0.82 * shape_mod
    gyri = _harmonics(rng, theta, tuple(rng.choice(np.arange(9, 19), size=4, replace=False)), 0.035)
    r_white = r_brain * (0.80 + gyri + _harmonics(rng, theta, (1, 2, 3), 0.03))
    t = PHANTOM_INTENSITIES
    img = np.zeros((h, w), dtype=np.float64)
    img[rho <= r_head] = t["fat"]
    img[rho <= r_skull] = t["skull"]
    img[rho <= r_csf] = t["csf"]
    img[rho <= r_brain] = t["grey"]
    img[rho <= r_white] = t["white"]
    # sulci: thin CSF clefts running inwards from the brain surface through the grey ribbon
    for phi in rng.uniform(-np.pi, np.pi, size=rng.integers(8, 16)):
        depth = rng.uniform(0.75, 0.92)
        cleft = (np.abs(np.angle(np.exp(1j * (theta - phi)))) < 0.025) & (rho <= r_brain) & (rho >= depth * r_brain)
        img[cleft] = t["csf"]
    # deep grey nuclei and the lateral ventricles (a "butterfly" of two tilted ellipses), size varies with the level
    level = rng.uniform(0.4, 1.0)
    for side in (-1.0, 1.0):
        img[_ellipse(u, v, side * 0.22, 0.02, 0.09, 0.16, side * 0.3) & (rho <= r_white)] = t["nuclei"]
    for side in (-1.0, 1.0):
        img[_ellipse(u, v, side * 0.09 * level, -0.05, 0.055 * level + 0.02, 0.26 * level, -side * 0.35)] = t["csf"]
    if blur > 0:
        img = ndimage.gaussian_filter(img, blur)
    field = ndimage.gaussian_filter(rng.standard_normal((h, w)), 3.0)
    img *= 1.0 + texture * field / (field.std() + 1e-8) * (rho <= r_brain)
    if bias > 0:
        gx, gy = rng.uniform(-1, 1, size=2)
        field = gx * xx + gy * yy + rng.uniform(-1, 1) * (xx**2 - yy**2)
        field = (field - field.min()) / (np.ptp(field) + 1e-12) - 0.5
        img *= 1.0 + bias * field
    if noise > 0:
        img = np.abs(img + noise * (rng.standard_normal((h, w)) + 1j * rng.standard_normal((h, w))))
    return (img / img.max()).astype(np.float32)


def _save_nifti(image: np.ndarray, spacing_mm: float, path: Path) -> None:
    import nibabel as nib

    affine = np.diag([spacing_mm, spacing_mm, 1.0, 1.0])
    nii = nib.Nifti1Image(image, affine)
    nii.header.set_xyzt_units("mm")
    nii.set_qform(affine, code=1)
    nii.set_sform(affine, code=1)
    nib.save(nii, str(path))


def make_phantom_dataset(
    out_dir: PathLike,
    num_images: int = 48,
    num_test: int = 4,
    shape: Union[int, Sequence[int]] = 128,
    fov_mm: float = 220.0,
    seed: int = 0,
    noise: float = 0.01,
    overwrite: bool = False,
) -> Path:
    """Write brain phantoms as 2D NIfTI magnitude images in an MSD-like layout; return the dataset.json path.

    ``num_images`` slices go to ``imagesTr/brain_NNN.nii.gz`` (listed under ``"training"``; the bundle splits them
    into training and validation) and ``num_test`` to ``imagesTs/brain_test_NNN.nii.gz`` (``"test"``).  Pixel
    spacing is ``fov_mm / H``.  Slice ``i`` uses seed ``seed + i`` (test slices continue the sequence), so datasets
    with the same seed share their first slices.  dataset.json is written last (atomically): its presence marks a
    complete dataset.

    Raises:
        FileExistsError: dataset.json exists and ``overwrite`` is False.
    """
    check_int(num_images, "num_images")
    check_int(num_test, "num_test", 0)
    if not (np.isfinite(fov_mm) and fov_mm > 0):
        raise ValueError(f"fov_mm must be a positive number, got {fov_mm!r}.")
    h, w = _as_shape(shape)
    out = Path(out_dir)
    if (out / "dataset.json").exists() and not overwrite:
        raise FileExistsError(f"{out / 'dataset.json'} already exists; pass overwrite=True to replace the dataset.")
    items: dict[str, list[dict]] = {"training": [], "test": []}
    for split, folder, prefix, count, offset in (
        ("training", "imagesTr", "brain", num_images, 0), ("test", "imagesTs", "brain_test", num_test, num_images)
    ):
        (out / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            name = f"{prefix}_{i:03d}.nii.gz"
            _save_nifti(make_brain_phantom(seed + offset + i, (h, w), noise=noise), fov_mm / h, out / folder / name)
            items[split].append({"image": f"./{folder}/{name}"})
    meta = {
        "name": "SyntheticBrainMR",
        "description": "Brain-like 2D T1-weighted magnitude phantoms (monai_implicit.data.make_phantom_dataset)",
        "reference": "Layout of the Medical Segmentation Decathlon; content: see monai_implicit/data/phantoms.py",
        "licence": "CC0",
        "tensorImageSize": "2D",
        "modality": {"0": "MR-T1"},
        "labels": {},
        "numTraining": num_images,
        "numTest": num_test,
        "seed": seed,
        **items,
    }
    tmp = out / "dataset.json.part"
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, out / "dataset.json")
    return out / "dataset.json"
