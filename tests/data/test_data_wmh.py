"""Tests of the synthetic WMH-challenge dataset and the WMH-layout datalist builder."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from monai.data import load_decathlon_datalist
from scipy import ndimage

from monai_implicit.data import WMH_SITES, make_wmh_like_case, make_wmh_like_dataset, wmh_datalist, wmh_subjects

FOV = (120.0, 140.0, 24.0)


@pytest.mark.parametrize("site", list(WMH_SITES))
def test_case_contrast_geometry_and_labels(site):
    t1, flair, label, affine = make_wmh_like_case(3, site=site, fov_mm=FOV, other_pathology_prob=1.0)
    assert t1.shape == flair.shape == label.shape and t1.dtype == flair.dtype == np.float32
    assert np.allclose(np.diag(affine)[:3], WMH_SITES[site])
    assert set(np.unique(label)) == {0, 1, 2}
    wmh = label == 1
    # WMH: bright in FLAIR and darker than the white matter around it in T1 (compared with a shell around them)
    shell = ndimage.binary_dilation(wmh, iterations=3) & ~ndimage.binary_dilation(wmh, iterations=1) & (label == 0)
    shell &= flair > 0.3 * flair[wmh].mean()  # tissue only: the ventricles (dark CSF) touch periventricular lesions
    assert flair[wmh].mean() > 1.5 * flair[shell].mean()
    assert t1[wmh].mean() < t1[shell].mean()
    # several separate small lesions (26-connectivity, the WMH challenge's)
    _, n = ndimage.label(wmh, structure=np.ones((3, 3, 3)))
    assert n >= 3 and wmh.mean() < 0.05  # a few percent of the volume at most
    # deterministic in the seed, different across seeds
    assert np.array_equal(make_wmh_like_case(3, site=site, fov_mm=FOV, other_pathology_prob=1.0)[2], label)
    assert not np.array_equal(make_wmh_like_case(4, site=site, fov_mm=FOV)[2], label)


def test_bad_arguments():
    with pytest.raises(ValueError, match="site"):
        make_wmh_like_case(0, site="Paris")
    with pytest.raises(ValueError, match="num_deep"):
        make_wmh_like_case(0, num_deep=(3, 1))
    with pytest.raises(ValueError, match="num_cases"):
        make_wmh_like_dataset("unused", num_cases=0)


def test_dataset_layout_and_datalist(tmp_path):
    path = make_wmh_like_dataset(tmp_path / "wmh", num_cases=3, fov_mm=FOV)
    assert path == tmp_path / "wmh" / "dataset.json"
    for i, site in enumerate(WMH_SITES):
        for rel in ("pre/T1.nii.gz", "pre/FLAIR.nii.gz", "wmh.nii.gz"):
            assert (tmp_path / "wmh" / site / str(i) / rel).is_file()
    items = load_decathlon_datalist(str(path), True, "training")
    assert len(items) == 3 and [p.split("/")[-1] for p in items[0]["image"]] == ["T1.nii.gz", "FLAIR.nii.gz"]
    header = nib.load(items[0]["image"][0]).header
    assert np.allclose(header.get_zooms(), WMH_SITES[items[0]["case_id"].split("_")[0]])
    with pytest.raises(FileExistsError):
        make_wmh_like_dataset(tmp_path / "wmh", num_cases=1, fov_mm=FOV)


def test_datalist_of_nested_real_layout(tmp_path):
    # the public release nests one site one level deeper (Amsterdam/GE3T/100); test subjects have no wmh.nii.gz
    root = tmp_path / "training"
    for rel, labelled in (("Utrecht/0", True), ("Amsterdam/GE3T/100", True), ("Singapore/50", False)):
        (root / rel / "pre").mkdir(parents=True)
        for name in ("T1.nii.gz", "FLAIR.nii.gz") + (("../wmh.nii.gz",) if labelled else ()):
            (root / rel / "pre" / name).write_bytes(b"x")
    subjects = wmh_subjects(root)
    assert [s["site"] for s in subjects] == ["Amsterdam/GE3T", "Singapore", "Utrecht"]
    out = wmh_datalist(root, tmp_path / "elsewhere" / "list.json")
    meta = json.loads(out.read_text())
    assert meta["numTraining"] == 2 and meta["numTest"] == 1
    assert meta["training"][0]["image"][0] == "../training/Amsterdam/GE3T/100/pre/T1.nii.gz"
    (root / "Utrecht" / "0" / "pre" / "T1.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match="no pre/T1"):
        wmh_subjects(root)
    with pytest.raises(FileNotFoundError, match="layout"):
        wmh_subjects(tmp_path / "elsewhere")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        wmh_subjects(tmp_path / "missing")
