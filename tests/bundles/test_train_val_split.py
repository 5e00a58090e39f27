"""train_val_split: a datalist's own validation list wins over a random split of its training list."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from monai_implicit.data import train_val_split


def _datalist(tmp_path, n_train, n_val=0):
    for i in range(n_train + n_val):
        nib.save(nib.Nifti1Image(np.zeros((4, 4), np.float32), np.eye(4)), str(tmp_path / f"s{i}.nii.gz"))
    content = {"training": [{"image": f"s{i}.nii.gz"} for i in range(n_train)]}
    if n_val:
        content["validation"] = [{"image": f"s{i}.nii.gz"} for i in range(n_train, n_train + n_val)]
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(content))
    return path


def _names(items):
    return sorted(d["image"].rsplit("/", 1)[-1] for d in items)


def test_declared_validation_list_is_used_as_is(tmp_path):
    train, val = train_val_split(_datalist(tmp_path, 6, 2), ("image",), val_fraction=0.5, seed=3)
    assert _names(train) == [f"s{i}.nii.gz" for i in range(6)]
    assert _names(val) == ["s6.nii.gz", "s7.nii.gz"]


def test_random_split_without_validation_list(tmp_path):
    path = _datalist(tmp_path, 10)
    train, val = train_val_split(path, ("image",), val_fraction=0.2, seed=0)
    assert len(train) == 8 and len(val) == 2 and not set(_names(train)) & set(_names(val))
    again = train_val_split(path, ("image",), val_fraction=0.2, seed=0)
    assert _names(again[1]) == _names(val)  # seeded
    other = {tuple(_names(train_val_split(path, ("image",), val_fraction=0.2, seed=s)[1])) for s in range(6)}
    assert len(other) > 1  # the seed matters


def test_too_small_or_bad_fraction_is_refused(tmp_path):
    path = _datalist(tmp_path, 1)
    with pytest.raises(ValueError, match="dataset.json: 1 training case"):
        train_val_split(path, ("image",), val_fraction=0.5)
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(path, ("image",), val_fraction=1.0)
