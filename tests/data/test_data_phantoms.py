"""Tests of the brain-like MR phantoms and their NIfTI dataset (monai_implicit.data.phantoms)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from monai.data import load_decathlon_datalist

from monai_implicit.data.phantoms import PHANTOM_INTENSITIES, make_brain_phantom, make_phantom_dataset


def test_phantom_shape_range_and_seed():
    a, b, c = make_brain_phantom(1, 64), make_brain_phantom(1, 64), make_brain_phantom(2, 64)
    assert a.shape == (64, 64) and a.dtype == np.float32
    assert a.max() == pytest.approx(1.0) and a.min() >= 0.0
    assert np.array_equal(a, b) and not np.allclose(a, c)
    assert make_brain_phantom(0, (48, 80)).shape == (48, 80)


def test_phantom_tissues_without_degradations():
    """No blur, bias, texture or noise: the image takes exactly the tissue intensities (scaled by the brightest)."""
    img = make_brain_phantom(3, 128, noise=0.0, bias=0.0, blur=0.0, texture=0.0)
    levels = np.array(sorted(PHANTOM_INTENSITIES.values()))
    values = np.unique(img)
    expected = np.concatenate([[0.0], levels / levels.max()])
    assert all(np.isclose(v, expected, atol=1e-6).any() for v in values)
    # T1 contrast: white matter is the largest brain tissue and brighter than grey matter, which is brighter than CSF
    scale = levels.max()
    counts = {k: int(np.isclose(img, v / scale, atol=1e-6).sum()) for k, v in PHANTOM_INTENSITIES.items()}
    assert all(n > 0 for n in counts.values())
    assert counts["white"] > counts["grey"] > 0 and counts["csf"] > 0
    assert img[0, 0] == 0.0 and img[64, 64] > 0  # background corner, head centre


def test_phantom_noise_is_rician_floor():
    """Background = |complex N(0, s^2)| (Rayleigh, mean s sqrt(pi/2)); fat keeps its level: compare the two."""
    s = 0.02
    img = make_brain_phantom(4, 128, noise=s, bias=0.0, blur=0.0, texture=0.0)
    clean = make_brain_phantom(4, 128, noise=0.0, bias=0.0, blur=0.0, texture=0.0)
    background, fat = img[clean == 0], img[clean == 1.0]  # fat is the brightest tissue, 1.0 after scaling
    expected = s * np.sqrt(np.pi / 2) / PHANTOM_INTENSITIES["fat"]  # both are divided by the same image maximum
    assert background.mean() / np.median(fat) == pytest.approx(expected, rel=0.08)


@pytest.mark.parametrize("kwargs, match", [
    ({"shape": 8}, "shape"), ({"shape": (32, 32, 32)}, "shape"), ({"noise": -1.0}, "noise"),
    ({"blur": float("nan")}, "blur"), ({"texture": -0.1}, "texture"),
])
def test_phantom_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_brain_phantom(0, **kwargs)


def test_dataset_layout(tmp_path):
    path = make_phantom_dataset(tmp_path / "ds", num_images=3, num_test=2, shape=32, fov_mm=160.0, seed=5)
    meta = json.loads(path.read_text())
    assert meta["numTraining"] == 3 and meta["numTest"] == 2 and meta["tensorImageSize"] == "2D"
    items = load_decathlon_datalist(str(path), True, "training")
    assert len(items) == 3 and all(i["image"].endswith(".nii.gz") for i in items)
    nii = nib.load(items[0]["image"])
    assert nii.shape == (32, 32) and np.allclose(nii.header.get_zooms()[:2], 5.0)
    assert np.allclose(np.asarray(nii.dataobj), make_brain_phantom(5, 32), atol=1e-6)
    test = load_decathlon_datalist(str(path), True, "test")
    assert np.allclose(np.asarray(nib.load(test[0]["image"]).dataobj), make_brain_phantom(8, 32), atol=1e-6)
    with pytest.raises(FileExistsError, match="overwrite"):
        make_phantom_dataset(tmp_path / "ds", num_images=1)
    make_phantom_dataset(tmp_path / "ds", num_images=1, num_test=0, shape=32, overwrite=True)
    assert json.loads(path.read_text())["numTraining"] == 1
    for bad, match in (({"num_images": 0}, "num_images"), ({"num_test": -1}, "num_test"), ({"fov_mm": 0}, "fov_mm")):
        with pytest.raises(ValueError, match=match):
            make_phantom_dataset(tmp_path / "other", **bad)
