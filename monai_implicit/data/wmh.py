"""A synthetic dataset in the WMH segmentation challenge layout, and a datalist builder for the real layout.

The NeRD paper evaluates white-matter-hyperintensity (WMH) segmentation on the MICCAI 2017 WMH challenge data ("NeRD:
Neural Representation of Distribution for Medical Image Segmentation", Sec. 3.1): T1 and FLAIR brain MRI from three
sites, 3 mm slices, manual labels where 1 is WMH and 2 is "other pathology" (infarcts, cavities...), which the challenge
ignores in every metric. The data cannot ship with the package, so :func:`make_wmh_like_dataset` writes small phantoms
in the same *format and layout*:

* challenge layout: ``<root>/<site>/<subject>/pre/T1.nii.gz``, ``pre/FLAIR.nii.gz`` (co-registered, same grid) and
  ``<root>/<site>/<subject>/wmh.nii.gz`` (uint8 0/1/2);
* per-site voxel sizes of the real sites (Utrecht 0.96 x 0.96 x 3 mm, Singapore 1 x 1 x 3 mm, Amsterdam GE3T
  1.2 x 0.98 x 3 mm), in the NIfTI header;
* a brain-like head: scalp, skull, a CSF rim, a folded cortical ribbon, white matter and two lateral ventricles,
  with T1 / FLAIR contrasts of real scans (CSF dark in both, WMH bright in FLAIR and slightly dark in T1, the cortex
  somewhat brighter than white matter in FLAIR, a multiplicative bias field and noise);
* small bright lesions in FLAIR: periventricular caps touching the ventricles and deep punctate lesions in the
  white matter; in some subjects an "other pathology" lesion (a dark cavity with a bright rim, label 2), which
  looks like WMH in FLAIR and is exactly the case the challenge excludes from the evaluation.

:func:`wmh_datalist` walks a folder in the challenge layout (any depth of site folders) and writes an MSD-style
``dataset.json`` whose ``image`` entries are ``[T1, FLAIR]`` (two channels, in that order) and whose ``label`` is
``wmh.nii.gz``; subjects without ``wmh.nii.gz`` go to ``test``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from monai.config import PathLike
from scipy import ndimage

from monai_implicit.data.lits import _as_triple, _centred_axes, _save_nifti, _smooth_field
from monai_implicit.utils import check_option, check_positive_int

__all__ = ["WMH_LABELS", "WMH_SITES", "make_wmh_like_case", "make_wmh_like_dataset", "wmh_datalist", "wmh_subjects"]

#: label values of the WMH challenge (2 is excluded from the evaluation)
WMH_LABELS = {"0": "background", "1": "white matter hyperintensity", "2": "other pathology (ignored)"}

#: the challenge's sites and their voxel sizes (x, y, z) in mm
WMH_SITES = {"Utrecht": (0.96, 0.96, 3.0), "Singapore": (1.0, 1.0, 3.0), "GE3T": (1.2, 0.98, 3.0)}


# tissue intensities (T1, FLAIR) in arbitrary scanner units, before the per-site gain
_TISSUE = {
    "scalp": (0.85, 0.55),
    "skull": (0.08, 0.06),
    "csf": (0.12, 0.08),
    "gm": (0.45, 0.58),
    "wm": (0.70, 0.45),
    "wmh": (0.52, 0.95),
}


def _ellipsoid(coords: Sequence[np.ndarray], centre: Sequence[float], semi: Sequence[float]) -> np.ndarray:
    """Normalised ellipsoid radius at every voxel (``<= 1`` inside)."""
    return np.sqrt(sum(((c - m) / s) ** 2 for c, m, s in zip(coords, centre, semi)))


def make_wmh_like_case(
    seed: int,
    site: str = "Utrecht",
    fov_mm: Union[float, Sequence[float]] = (192.0, 228.0, 48.0),
    spacing: Optional[Union[float, Sequence[float]]] = None,
    noise: float = 0.025,
    num_deep: Sequence[int] = (4, 10),
    num_periventricular: Sequence[int] = (3, 6),
    other_pathology_prob: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One synthetic subject: co-registered T1 and FLAIR volumes and the WMH label.

    Args:
        seed: seed of this subject (the subject is a deterministic function of all the arguments).
        site: one of :data:`WMH_SITES`; sets the voxel size (unless ``spacing`` is given) and the intensity gain.
        fov_mm: physical field of view ``(x, y, z)`` in mm (x left-right, y posterior-anterior, z inferior-superior).
        spacing: voxel size ``(x, y, z)`` in mm; None uses the site's.
        noise: standard deviation of the Rician-like noise relative to white matter.
        num_deep: inclusive range of the number of deep (punctate) lesions.
        num_periventricular: inclusive range of the number of periventricular caps.
        other_pathology_prob: probability that the subject also has one label-2 lesion.

    Returns:
        ``t1`` float32 ``(X, Y, Z)``, ``flair`` float32 ``(X, Y, Z)``, ``label`` uint8 ``(X, Y, Z)`` with values
        0/1/2, ``affine`` (4, 4) float64 (RAS, millimetres).
    """
    check_option(site, WMH_SITES, "site")
    fov = _as_triple(fov_mm, "fov_mm")
    spacing_t = _as_triple(WMH_SITES[site] if spacing is None else spacing, "spacing")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}.")
    for name, rng_ in (("num_deep", num_deep), ("num_periventricular", num_periventricular)):
        if len(rng_) != 2 or rng_[0] < 0 or rng_[1] < rng_[0]:
            raise ValueError(f"{name} must be an inclusive range (lo, hi) with 0 <= lo <= hi, got {tuple(rng_)}.")
    if not 0.0 <= other_pathology_prob <= 1.0:
        raise ValueError(f"other_pathology_prob must be in [0, 1], got {other_pathology_prob}.")
    rng = np.random.default_rng(seed)
    shape, axes = _centred_axes(fov, spacing_t)
    coords = np.meshgrid(*axes, indexing="ij")
    x, y, z = coords
    # the slab is a band of axial slices through the ventricles; a head is ~15% longer than wide
    head_semi = np.array([0.40 * fov[0], 0.42 * fov[1], 0.40 * fov[1]]) * rng.uniform(0.92, 1.0, 3)
    head_centre = np.array([0.0, 0.0, rng.uniform(-0.1, 0.1) * fov[2] - 0.15 * head_semi[2]])
    # a smooth deformation makes every head (and its cortical folding) different
    wobble = _smooth_field(rng, shape, sigma=12.0 / min(spacing_t))
    head_r = _ellipsoid(coords, head_centre, head_semi) + 0.015 * wobble
    depth = (1.0 - head_r) * head_semi[:2].mean()  # approximate depth below the scalp surface in mm
    tissue = np.zeros(shape, dtype=np.int8)  # 0 air, 1 scalp, 2 skull, 3 csf, 4 gm, 5 wm
    tissue[depth > 0] = 1
    tissue[depth > 5.0] = 2
    tissue[depth > 11.0] = 3
    # the cortical ribbon folds: its inner border wanders with a finer random field (gyri and sulci)
    folds = _smooth_field(rng, shape, sigma=3.0 / min(spacing_t))
    tissue[depth > 13.0] = 4
    tissue[depth > 17.0 + 3.0 * folds] = 5
    # sulci: thin CSF clefts reaching into the cortex
    tissue[(tissue == 4) & (folds > 1.3)] = 3

    # lateral ventricles: two tilted ellipsoids either side of the midline, the frontal horns the widest
    ventricles = np.zeros(shape, dtype=bool)
    vent_semi = np.array([7.0, 0.20 * fov[1], 20.0]) * rng.uniform(0.8, 1.25, 3)
    for side in (-1.0, 1.0):
        centre = np.array([side * rng.uniform(7.0, 10.0), rng.uniform(-6.0, 6.0), head_centre[2] + 0.25 * head_semi[2]])
        taper = 1.0 + 0.35 * (y - centre[1]) / vent_semi[1]  # wider anteriorly
        r = _ellipsoid((x, y, z), centre, (vent_semi[0] * np.clip(taper, 0.4, 1.6), vent_semi[1], vent_semi[2]))
        ventricles |= (r <= 1.0) & (tissue == 5)
    tissue[ventricles] = 3

    label = np.zeros(shape, dtype=np.uint8)
    wm = tissue == 5
    dist_vent = ndimage.distance_transform_edt(~ventricles, sampling=spacing_t)
    dist_cortex = ndimage.distance_transform_edt(wm | ventricles, sampling=spacing_t)

    def add_lesion(centre_vox: np.ndarray, semi_mm: np.ndarray, value: int) -> np.ndarray:
        c_mm = np.array([axes[d][centre_vox[d]] for d in range(3)])
        blob = _ellipsoid(coords, c_mm, semi_mm) + 0.12 * folds <= 1.0
        blob &= wm | (label > 0)
        label[blob & (label == 0)] = value
        return blob

    # periventricular caps: lesions centred 1-4 mm outside the ventricle wall, so they touch it
    n_peri = int(rng.integers(num_periventricular[0], num_periventricular[1] + 1))
    shell = np.argwhere(wm & (dist_vent > 1.0) & (dist_vent < 4.0))
    for _ in range(n_peri if len(shell) else 0):
        c = shell[rng.integers(len(shell))]
        add_lesion(c, np.array([rng.uniform(3.5, 7.5), rng.uniform(3.5, 7.5), rng.uniform(4.0, 8.0)]), 1)
    # deep punctate lesions: small, well inside the white matter, away from the ventricles
    n_deep = int(rng.integers(num_deep[0], num_deep[1] + 1))
    deep = np.argwhere(wm & (dist_vent > 10.0) & (dist_cortex > 4.0))
    for _ in range(n_deep if len(deep) else 0):
        c = deep[rng.integers(len(deep))]
        add_lesion(c, np.array([rng.uniform(2.5, 5.0), rng.uniform(2.5, 5.0), rng.uniform(3.0, 6.0)]), 1)
    # other pathology: a lacune-like cavity with a gliotic (FLAIR-bright) rim, labelled 2 as a whole
    cavity = np.zeros(shape, dtype=bool)
    if rng.uniform() < other_pathology_prob and len(deep):
        c = deep[rng.integers(len(deep))]
        c_mm = np.array([axes[d][c[d]] for d in range(3)])
        semi = np.array([rng.uniform(3.0, 5.0), rng.uniform(3.0, 5.0), rng.uniform(4.0, 6.0)])
        r = _ellipsoid(coords, c_mm, semi)
        region = (r <= 1.0) & (wm | (label > 0))
        label[region] = 2
        cavity = (r <= 0.6) & region

    t1 = np.zeros(shape, dtype=np.float32)
    flair = np.zeros(shape, dtype=np.float32)
    for code, name in enumerate(("scalp", "skull", "csf", "gm", "wm"), start=1):
        t1[tissue == code], flair[tissue == code] = _TISSUE[name]
    lesion = label > 0
    t1[lesion], flair[lesion] = _TISSUE["wmh"]
    t1[cavity], flair[cavity] = _TISSUE["csf"]
    # lesion contrast varies between lesions and inside them (partial volume, age of the lesion)
    contrast = 1.0 + 0.08 * _smooth_field(rng, shape, sigma=1.0)
    flair[lesion & ~cavity] *= contrast[lesion & ~cavity]
    # texture, bias field, partial-volume blur, per-site gain and noise (magnitude images: no negative values)
    inside = tissue > 0
    t1 += 0.03 * _smooth_field(rng, shape, sigma=1.5) * inside
    flair += 0.03 * _smooth_field(rng, shape, sigma=1.5) * inside
    bias = np.exp(0.10 * _smooth_field(rng, shape, sigma=40.0 / min(spacing_t)))
    blur = [0.6 * min(spacing_t) / s for s in spacing_t]
    gain = {"Utrecht": (420.0, 310.0), "Singapore": (950.0, 780.0), "GE3T": (130.0, 95.0)}[site]
    images = []
    for image, g in zip((t1, flair), gain):
        image = ndimage.gaussian_filter(image * bias, sigma=blur)
        real = image + rng.normal(0.0, noise * _TISSUE["wm"][0], shape)
        imag = rng.normal(0.0, noise * _TISSUE["wm"][0], shape)
        images.append((np.sqrt(real**2 + imag**2) * g * rng.uniform(0.9, 1.1)).astype(np.float32))

    affine = np.diag([*spacing_t, 1.0])
    affine[:3, 3] = [-(n - 1) / 2 * s for n, s in zip(shape, spacing_t)]
    return images[0], images[1], label, affine


def make_wmh_like_dataset(
    out_dir: PathLike,
    num_cases: int = 12,
    seed: int = 0,
    sites: Sequence[str] = tuple(WMH_SITES),
    fov_mm: Union[float, Sequence[float]] = (192.0, 228.0, 48.0),
    noise: float = 0.025,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic dataset in the WMH challenge layout plus its ``dataset.json``; return the datalist path.

    Subjects are distributed over ``sites`` in turn and numbered like the challenge (``<site>/<i>``); every subject
    has ``pre/T1.nii.gz``, ``pre/FLAIR.nii.gz`` (float32) and ``wmh.nii.gz`` (uint8 0/1/2).  The ``dataset.json``
    (written last by :func:`wmh_datalist`, so its presence marks a complete dataset) lists them for
    ``monai.data.load_decathlon_datalist``.

    Args:
        out_dir: output folder (created).
        num_cases: number of subjects.
        seed: base seed; subject ``i`` uses ``seed + i``.
        sites: site names from :data:`WMH_SITES`.
        fov_mm, noise: see :func:`make_wmh_like_case`.
        overwrite: replace an existing dataset.json; otherwise an existing dataset raises FileExistsError.
    """
    check_positive_int(num_cases, "num_cases")
    if isinstance(sites, str) or len(sites) == 0 or any(s not in WMH_SITES for s in sites):
        raise ValueError(f"sites must be a non-empty sequence of names from {tuple(WMH_SITES)}, got {sites!r}.")
    out = Path(out_dir)
    if (out / "dataset.json").exists() and not overwrite:
        raise FileExistsError(f"{out / 'dataset.json'} already exists; pass overwrite=True to replace the dataset.")
    for i in range(num_cases):
        site = sites[i % len(sites)]
        t1, flair, label, affine = make_wmh_like_case(seed + i, site=site, fov_mm=fov_mm, noise=noise)
        folder = out / site / str(i)
        (folder / "pre").mkdir(parents=True, exist_ok=True)
        _save_nifti(t1, affine, folder / "pre" / "T1.nii.gz")
        _save_nifti(flair, affine, folder / "pre" / "FLAIR.nii.gz")
        _save_nifti(label, affine, folder / "wmh.nii.gz")
    return wmh_datalist(out, out / "dataset.json", name="SyntheticWMH", seed=seed)


def _find(folder: Path, stem: str) -> Optional[Path]:
    for suffix in (".nii.gz", ".nii"):
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def wmh_subjects(wmh_dir: PathLike) -> list[dict]:
    """The subjects of a folder in the WMH challenge layout, as datalist entries with absolute paths.

    Every folder under ``wmh_dir`` (at any depth, e.g. ``Utrecht/0`` or ``Amsterdam/GE3T/100``) holding
    ``pre/FLAIR.nii[.gz]`` is a subject and must also hold ``pre/T1.nii[.gz]``.  Each entry is
    ``{"image": [T1, FLAIR], "site": ..., "subject": ...}`` plus ``"label": wmh`` when ``wmh.nii[.gz]`` exists;
    sorted by folder.

    Raises:
        FileNotFoundError: ``wmh_dir`` does not exist, holds no subject, or a subject has no T1 (named).
    """
    root = Path(wmh_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"WMH folder {str(root)!r} does not exist or is not a folder.")
    folders = sorted({p.parent.parent for p in root.rglob("FLAIR.nii*") if p.parent.name == "pre"})
    if not folders:
        raise FileNotFoundError(
            f"no subject found under {str(root)!r}: the WMH challenge layout is <site>/<subject>/pre/FLAIR.nii.gz, "
            "pre/T1.nii.gz and <site>/<subject>/wmh.nii.gz."
        )
    subjects = []
    for folder in folders:
        t1, flair, wmh = _find(folder / "pre", "T1"), _find(folder / "pre", "FLAIR"), _find(folder, "wmh")
        if t1 is None:
            raise FileNotFoundError(f"subject {str(folder)!r} has pre/FLAIR but no pre/T1.nii[.gz].")
        item = {"image": [str(t1.resolve()), str(flair.resolve())], "site": folder.parent.relative_to(root).as_posix(),
                "subject": folder.name}
        if wmh is not None:
            item["label"] = str(wmh.resolve())
        subjects.append(item)
    return subjects


def wmh_datalist(
    wmh_dir: PathLike, out_file: Optional[PathLike] = None, name: str = "WMH", seed: Optional[int] = None
) -> Path:
    """Write an MSD-style datalist for data in the WMH challenge layout and return its path.

    The subjects are those of :func:`wmh_subjects`.  Subjects with ``wmh.nii[.gz]`` go to
    ``training`` as ``{"image": [T1, FLAIR], "label": wmh, "case_id": "<site>_<subject>"}``, the others to ``test``
    (``image`` only).  Paths are relative to the datalist's folder, as ``monai.data.load_decathlon_datalist``
    expects.

    Args:
        wmh_dir: the challenge's ``training`` (or ``test``) folder.
        out_file: datalist path; default ``wmh_dir/dataset.json``.
        name: the datalist's ``name`` entry.
        seed: recorded in the datalist (synthetic data).

    Raises:
        FileNotFoundError: ``wmh_dir`` does not exist, holds no subject, or a subject has no T1 (named).
    """
    root = Path(wmh_dir)
    out = Path(out_file) if out_file is not None else root / "dataset.json"
    base = out.resolve().parent
    training, test = [], []
    for subject in wmh_subjects(root):
        # no bare "site"/"subject" strings: load_decathlon_datalist would turn names of existing folders into paths
        item = {"image": subject["image"], "case_id": f"{subject['site'].replace('/', '_')}_{subject['subject']}"}
        if "label" in subject:
            item["label"] = subject["label"]
        item["image"] = [os.path.relpath(p, base) for p in item["image"]]
        if "label" in item:
            item["label"] = os.path.relpath(item["label"], base)
            training.append(item)
        else:
            test.append(item)
    meta = {
        "name": name,
        "description": "White matter hyperintensities (WMH challenge layout), monai_implicit.data.wmh_datalist",
        "reference": "Kuijf et al., IEEE TMI 38(11) 2019; https://wmh.isi.uu.nl",
        "tensorImageSize": "3D",
        "modality": {"0": "T1", "1": "FLAIR"},
        "labels": dict(WMH_LABELS),
        "numTraining": len(training),
        "numTest": len(test),
        "training": training,
        "test": test,
    }
    if seed is not None:
        meta["seed"] = seed
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, out)
    return out
