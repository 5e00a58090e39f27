"""Data checks: non-finite voxels, unreadable files and grid mismatches are refused with errors naming the file."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import LoadImaged

from monai_implicit.transforms import (
    CheckedLoadImage,
    CheckedLoadImaged,
    CheckFinite,
    CheckFinited,
    CheckSameGridd,
    GridMismatchError,
    ImageReadError,
    NonFiniteImageError,
    check_same_grid,
    nonfinite_counts,
)


def _nifti(path, data, affine=None):
    nib.save(nib.Nifti1Image(np.asarray(data), np.eye(4) if affine is None else affine), str(path))
    return str(path)


def _truncate(src, dst):
    data = open(src, "rb").read()
    with open(dst, "wb") as f:
        f.write(data[: len(data) // 2])
    return str(dst)


def test_nonfinite_voxels_are_counted_and_named(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.random((9, 8, 5)).astype(np.float32)
    bad = data.copy()
    bad[1, 2, 3] = np.nan
    bad[4, 4, 4] = np.nan
    bad[0, 0, 0] = -np.inf
    path = _nifti(tmp_path / "ct_nan.nii.gz", bad)
    with pytest.raises(NonFiniteImageError) as err:
        CheckedLoadImaged("image", ensure_channel_first=True)({"image": path})
    message = str(err.value)
    assert "ct_nan.nii.gz" in message and "3 non-finite voxel(s) (2 NaN, 1 inf)" in message
    assert isinstance(err.value, ValueError)
    # the same file passes MONAI's own loader silently: the check is what catches it
    assert torch.isnan(LoadImaged("image", image_only=True)({"image": path})["image"]).sum() == 2
    # a clean file loads exactly as MONAI's LoadImaged loads it; check_finite=False lets the NaN file through
    clean = _nifti(tmp_path / "ct.nii.gz", data)
    ours = CheckedLoadImaged(["image"], ensure_channel_first=True)({"image": clean})["image"]
    ref = LoadImaged(["image"], ensure_channel_first=True, image_only=True)({"image": clean})["image"]
    assert torch.equal(ours.as_tensor(), ref.as_tensor()) and torch.equal(ours.affine, ref.affine)
    assert CheckedLoadImage(check_finite=False)(path).shape == (9, 8, 5)


def test_check_finite_array_and_dictionary():
    x = torch.zeros(1, 4, 4)
    assert CheckFinite()(x) is x
    assert nonfinite_counts(x) == (0, 0, 16)
    assert nonfinite_counts(torch.zeros(3, dtype=torch.int16)) == (0, 0, 3)
    x[0, 1, 1] = float("inf")
    assert nonfinite_counts(x.numpy()) == (0, 1, 16)
    with pytest.raises(NonFiniteImageError, match="'probe' has 1 non-finite voxel"):
        CheckFinite(name="probe")(x)
    image = MetaTensor(torch.ones(1, 3, 3), meta={"filename_or_obj": "/data/t1.nii.gz"})
    label = MetaTensor(torch.full((1, 3, 3), float("nan")), meta={"filename_or_obj": "/data/seg.nii.gz"})
    with pytest.raises(NonFiniteImageError, match=r"label '/data/seg.nii.gz' has 9 non-finite voxel\(s\) \(9 NaN"):
        CheckFinited(["image", "label"])({"image": image, "label": label})
    # plain arrays: the file name comes from the MONAI meta dict
    with pytest.raises(NonFiniteImageError, match="'a.nii'"):
        CheckFinited("img")({"img": np.array([[np.nan]]), "img_meta_dict": {"filename_or_obj": "a.nii"}})


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_truncated_image_body_names_the_file(tmp_path, suffix):
    good = _nifti(tmp_path / f"good{suffix}", np.random.default_rng(1).random((20, 20, 10)).astype(np.float32))
    bad = _truncate(good, tmp_path / f"truncated{suffix}")
    nib.load(bad).header.get_data_shape()  # the header alone reads fine: only loading the body fails
    with pytest.raises(ImageReadError) as err:
        CheckedLoadImaged("image")({"image": bad})
    assert "truncated" + suffix in str(err.value) and err.value.__cause__ is not None
    with pytest.raises(FileNotFoundError, match="missing.nii.gz"):
        CheckedLoadImage()(str(tmp_path / "missing.nii.gz"))


def test_same_grid_check_names_both_files():
    eye = np.eye(4)
    check_same_grid((4, 5, 6), eye, "img.nii", (4, 5, 6), eye + 1e-4, "seg.nii")  # within MONAI's AFFINE_TOL
    check_same_grid((4, 5), None, "a", (4, 5), None, "b")
    with pytest.raises(GridMismatchError, match=r"'img.nii' has spatial shape \(4, 5, 6\) but 'seg.nii' has"):
        check_same_grid((4, 5, 6), eye, "img.nii", (4, 5, 7), eye, "seg.nii")
    shifted = eye.copy()
    shifted[0, 3] = 2.0
    with pytest.raises(GridMismatchError, match="'img.nii' and 'seg.nii' have the same shape"):
        check_same_grid((4, 5, 6), eye, "img.nii", (4, 5, 6), shifted, "seg.nii")
    with pytest.raises(ValueError, match="atol"):
        check_same_grid((4,), eye, "a", (4,), eye, "b", atol=float("nan"))


def test_same_grid_transform_on_loaded_images(tmp_path):
    affine = np.diag([0.8, 0.8, 3.0, 1.0])
    image = _nifti(tmp_path / "image.nii.gz", np.zeros((6, 6, 4), np.float32), affine)
    label = _nifti(tmp_path / "label.nii.gz", np.zeros((6, 6, 4), np.uint8), affine)
    other = affine.copy()
    other[2, 2] = 2.5  # another slice thickness: same shape, different grid
    moved = _nifti(tmp_path / "label_other_grid.nii.gz", np.zeros((6, 6, 4), np.uint8), other)
    load = CheckedLoadImaged(["image", "label"], ensure_channel_first=True)
    check = CheckSameGridd(["image", "label"])
    data = load({"image": image, "label": label})
    assert check(data)["label"] is data["label"]
    with pytest.raises(GridMismatchError) as err:
        check(load({"image": image, "label": moved}))
    assert "image.nii.gz" in str(err.value) and "label_other_grid.nii.gz" in str(err.value)
