"""Tests of the synthetic left-atrium dataset in the MSD Task02_Heart layout."""

from __future__ import annotations

import numpy as np
import pytest
from monai.data import load_decathlon_datalist
from scipy import ndimage

from monai_implicit.data import LA_LABELS, make_la_like_case, make_la_like_dataset

FOV = (140.0, 140.0, 60.0)


def test_case_anatomy_intensity_and_label():
    image, label, affine = make_la_like_case(1, fov_mm=FOV, labelled_vein_mm=8.0)
    assert image.dtype == np.int16 and label.dtype == np.uint8 and image.shape == label.shape
    assert np.allclose(np.diag(affine)[:3], (1.25, 1.25, 1.37))
    assert set(np.unique(label)) == {0, 1}
    atrium = label == 1
    # one connected atrium (body plus proximal veins)
    assert ndimage.label(atrium)[1] == 1
    # blood is bright (bSSFP): the atrium is much brighter than the whole volume ...
    assert np.median(image[atrium]) > 2.0 * np.median(image)
    # ... and not the only bright structure: other blood pools of similar intensity lie outside the label
    bright = image > 0.8 * np.median(image[atrium])
    assert (bright & ~atrium).sum() > atrium.sum()
    # the veins continue beyond the labelled part: labelling longer veins only adds voxels
    longer = make_la_like_case(1, fov_mm=FOV, labelled_vein_mm=20.0)[1]
    assert longer.sum() > label.sum() and np.all(longer[atrium] == 1)


def test_bad_arguments_and_layout(tmp_path):
    with pytest.raises(ValueError, match="noise"):
        make_la_like_case(0, noise=-1.0)
    with pytest.raises(ValueError, match="num_test"):
        make_la_like_dataset(tmp_path, num_cases=1, num_test=-1)
    path = make_la_like_dataset(tmp_path / "la", num_cases=2, num_test=1, fov_mm=FOV)
    assert (tmp_path / "la" / "imagesTr" / "la_001.nii.gz").is_file()
    assert (tmp_path / "la" / "imagesTs" / "la_003.nii.gz").is_file()
    items = load_decathlon_datalist(str(path), True, "training")
    assert [i["label"].split("/")[-1] for i in items] == ["la_001.nii.gz", "la_002.nii.gz"]
    assert load_decathlon_datalist(str(path), False, "test")[0]["image"].endswith("imagesTs/la_003.nii.gz")
    assert LA_LABELS == {"0": "background", "1": "left atrium"}
    with pytest.raises(FileExistsError):
        make_la_like_dataset(tmp_path / "la", num_cases=1, fov_mm=FOV)
