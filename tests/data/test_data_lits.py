"""Synthetic LiTS-like dataset generator, LiTS-layout datalist converter, ``python -m monai_implicit.data``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.data import load_decathlon_datalist
from monai.transforms import LoadImaged
from scipy import ndimage

from monai_implicit.data import lits_datalist, make_lits_like_case, make_lits_like_dataset
from monai_implicit.data.__main__ import main

SMALL_FOV = (64.0, 64.0, 48.0)
REPO = Path(__file__).resolve().parents[2]


def test_case_is_ct_like():
    image, label, affine = make_lits_like_case(3, fov_mm=(110.0, 110.0, 80.0))
    assert image.dtype == np.int16 and label.dtype == np.uint8 and image.shape == label.shape
    assert set(np.unique(label)) == {0, 1, 2}
    spacing = np.diag(affine)[:3]
    assert spacing[2] > spacing[0] == spacing[1]  # anisotropic, thick slices
    assert np.allclose(np.array(image.shape) * spacing, (110, 110, 80), atol=max(spacing))
    # Hounsfield ranges: air outside, enhanced liver, hypodense tumour
    assert image.min() < -900
    liver_hu, tumour_hu = np.median(image[label == 1]), np.median(image[label == 2])
    assert 80 < liver_hu < 130 and 20 < tumour_hu < liver_hu - 25
    # every tumour lies inside the liver: the voxels around a tumour are liver, never background
    tumour = label == 2
    ring = ndimage.binary_dilation(tumour) & ~tumour
    assert ring.any() and np.all(label[ring] == 1)

def test_case_is_deterministic_and_validates():
    a = make_lits_like_case(5, fov_mm=SMALL_FOV)
    b = make_lits_like_case(5, fov_mm=SMALL_FOV)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    with pytest.raises(ValueError, match="spacing"):
        make_lits_like_case(0, spacing=(1.0, -1.0, 2.0))
    with pytest.raises(ValueError, match="fov_mm"):
        make_lits_like_case(0, fov_mm=(1.0, 2.0))


def test_dataset_msd_layout(tmp_path):
    path = make_lits_like_dataset(tmp_path / "ds", num_cases=2, fov_mm=SMALL_FOV, spacing=(1.5, 1.5, 3.0))
    meta = json.loads(path.read_text())
    assert meta["labels"] == {"0": "background", "1": "liver", "2": "cancer"} and meta["numTraining"] == 2
    datalist = load_decathlon_datalist(str(path), True, "training")
    assert [Path(d["image"]).parent.name for d in datalist] == ["imagesTr", "imagesTr"]
    data = LoadImaged(("image", "label"), image_only=False)(datalist[0])
    # the header carries the anisotropic spacing (read back independently by nibabel and by MONAI)
    assert np.allclose(nib.load(datalist[0]["image"]).header.get_zooms(), (1.5, 1.5, 3.0))
    assert np.allclose(data["image"].pixdim, (1.5, 1.5, 3.0))
    assert data["image"].shape == data["label"].shape
    with pytest.raises(FileExistsError, match="dataset.json"):
        make_lits_like_dataset(tmp_path / "ds", num_cases=1, fov_mm=SMALL_FOV)
    with pytest.raises(ValueError, match="num_cases"):
        make_lits_like_dataset(tmp_path / "other", num_cases=0)
    assert not list((tmp_path / "ds").rglob("*.part*"))


def _touch_nifti(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 2), np.int16), np.eye(4)), str(path))


def test_lits_datalist(tmp_path):
    root = tmp_path / "LiTS"
    for n in (0, 1, 10):
        _touch_nifti(root / "Training Batch 1" / f"volume-{n}.nii")
        _touch_nifti(root / "Training Batch 1" / f"segmentation-{n}.nii")
    _touch_nifti(root / "test" / "volume-70.nii.gz")
    out = lits_datalist(root, tmp_path / "lists" / "lits.json")
    meta = json.loads(out.read_text())
    assert meta["numTraining"] == 3 and meta["numTest"] == 1
    datalist = load_decathlon_datalist(str(out), True, "training")
    assert [Path(d["image"]).name for d in datalist] == ["volume-0.nii", "volume-1.nii", "volume-10.nii"]
    assert all(Path(d["image"]).exists() and Path(d["label"]).exists() for d in datalist)
    assert [Path(d["label"]).name for d in datalist][2] == "segmentation-10.nii"


def test_lits_datalist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        lits_datalist(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="volume-N"):
        lits_datalist(tmp_path)
    _touch_nifti(tmp_path / "volume-1.nii")
    _touch_nifti(tmp_path / "segmentation-2.nii")
    with pytest.raises(ValueError, match="segmentation-2.nii"):
        lits_datalist(tmp_path)


def test_cli(tmp_path, capsys):
    assert main(["lits", "--out", str(tmp_path / "d"), "--num-cases", "1", "--fov-mm", "48", "48", "30"]) == 0
    assert (tmp_path / "d" / "dataset.json").exists()
    assert main(["lits-datalist", "--lits-dir", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    # the module entry point itself
    proc = subprocess.run(
        [sys.executable, "-m", "monai_implicit.data", "lits", "--help"], capture_output=True, text=True, cwd=REPO
    )
    assert proc.returncode == 0 and "--num-cases" in proc.stdout
