"""``monai_implicit.bundles.load(...).predict``: bad inputs fail with errors naming them; volumes for 2D bundles.

The bundles are loaded with untrained (seeded) weights written to ``models/model.pt`` of a temporary bundle root:
what is tested is the predictor's input handling, which does not depend on the weights, so no test trains.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

import monai_implicit.bundles
from monai_implicit.bundles import DensePredictor, MultiModalPredictor
from monai_implicit.transforms import ImageReadError, NonFiniteImageError

REPO = Path(__file__).resolve().parents[2]
LITS = {"network_def#features": 2, "network_def#input_features": 2, "network_def#depth": 1,
        "network_def#dropout": 0.0, "pixdim": [5.0, 5.0, 6.0], "patch_size": [8, 8, 8], "sw_batch_size": 8}
LA = {"network_def#features": 2, "network_def#init_sigma": 0.7, "pixdim": [4.0, 4.0, -1], "slice_size": [32, 32]}
CSMRI = {"network_def#network#network#features": 4, "network_def#network#network#input_features": 4,
         "network_def#network#network#depth": 2, "calib": 4}
WMH = {"network_def#features": [2, 4], "pixdim": [4.0, 4.0, -1], "slice_size": [32, 48], "sw_batch_size": 8}


def _config(bundle: str) -> Path:
    return REPO / "bundles" / bundle / "configs" / "inference.json"


def _load(bundle: str, overrides: dict, root: Path, **extra):
    """``load`` on a bundle root whose model.pt holds the seeded initial weights of the network."""
    if not (root / "models" / "model.pt").is_file():
        parser = ConfigParser()
        parser.read_config(str(_config(bundle)))
        parser["bundle_root"] = str(root)
        parser.update({k: v for k, v in overrides.items() if k.startswith("network_def")})
        torch.manual_seed(0)
        network = parser.get_parsed_content("network_def")
        (root / "models").mkdir(parents=True, exist_ok=True)
        torch.save(network.state_dict(), root / "models" / "model.pt")
        if "plan" in parser.config:  # the training plan a run stores next to its weights
            plan = {"pixdim": overrides["pixdim"], "hu_window": [-100.0, 250.0], "intensity_mean": 100.0,
                    "intensity_std": 50.0, "patch_size": overrides["patch_size"], "batch_size": 1,
                    "depth": overrides["network_def#depth"]}
            (root / "models" / "plan.json").write_text(json.dumps(plan))
    return monai_implicit.bundles.load(root, "cpu", _config(bundle), **{**overrides, **extra})


def _nifti(path: Path, data, affine=None) -> str:
    nib.save(nib.Nifti1Image(np.asarray(data, dtype=np.float32), np.eye(4) if affine is None else affine), str(path))
    return str(path)


@pytest.fixture(scope="module")
def lits(tmp_path_factory):
    return _load("hyperunet_lits", LITS, tmp_path_factory.mktemp("lits"))


def test_nan_voxel_is_refused_with_count_and_file(lits, tmp_path):
    volume = np.random.default_rng(0).normal(0, 100, (16, 14, 10)).astype(np.float32)
    assert tuple(lits.predict(torch.from_numpy(volume)).shape) == volume.shape
    volume[5, 5, 5] = np.nan
    volume[6, 5, 5] = np.inf
    path = _nifti(tmp_path / "ct_with_nan.nii.gz", volume)
    with pytest.raises(NonFiniteImageError) as err:
        lits.predict(path)
    assert "ct_with_nan.nii.gz" in str(err.value) and "2 non-finite voxel(s) (1 NaN, 1 inf)" in str(err.value)
    with pytest.raises(NonFiniteImageError, match=r"tensor of shape \(16, 14, 10\)' has 2 non-finite"):
        lits.predict(torch.from_numpy(volume))


def test_wrong_files_for_a_3d_bundle_are_named(lits, tmp_path):
    flat = _nifti(tmp_path / "slice_2d.nii.gz", np.zeros((16, 14)))
    with pytest.raises(ValueError, match=r"slice_2d.nii.gz' has 2 spatial dims .* takes images with 3 spatial dims"):
        lits.predict(flat)
    four_d = _nifti(tmp_path / "series_4d.nii.gz", np.zeros((16, 14, 10, 3)))
    with pytest.raises(ValueError, match="series_4d.nii.gz' holds 3 channels or volumes"):
        lits.predict(four_d)
    (tmp_path / "dicom_series").mkdir()
    with pytest.raises(ValueError, match="dicom_series' is a folder"):
        lits.predict(str(tmp_path / "dicom_series"))
    good = _nifti(tmp_path / "good.nii.gz", np.zeros((16, 14, 10)))
    data = open(good, "rb").read()
    (tmp_path / "truncated.nii.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated.nii.gz"):
        lits.predict(str(tmp_path / "truncated.nii.gz"))
    with pytest.raises(FileNotFoundError, match="missing.nii.gz"):
        lits.predict(str(tmp_path / "missing.nii.gz"))
    with pytest.raises(ValueError, match="3 spatial dims"):
        lits.predict(torch.zeros(2, 16, 14, 10))


def test_unknown_override_ids_are_refused(tmp_path):
    for bad in ({"sw_batchsize": 2}, {"network_def#featurez": 4}):
        with pytest.raises(ValueError) as err:
            _load("hyperunet_lits", LITS, tmp_path, **bad)
        assert repr(list(bad)) in str(err.value) and "inference.json" in str(err.value)
    # known ids are applied
    assert _load("hyperunet_lits", LITS, tmp_path, sw_batch_size=3).inferer.sw_batch_size == 3


def test_slice_inferer_bundle_predicts_a_volume_tensor(tmp_path):
    """njetunet_la runs a 2D network slice by slice: a (X, Y, Z) tensor is a volume, as a 3D file is."""
    predictor = _load("njetunet_la", LA, tmp_path)
    assert predictor.network_spatial_dims == 2 and predictor.image_spatial_dims == 3
    volume = np.random.default_rng(1).random((40, 36, 6)).astype(np.float32)
    from_tensor = predictor.predict(torch.from_numpy(volume))
    from_file = predictor.predict(_nifti(tmp_path / "la.nii.gz", volume))
    assert tuple(from_tensor.shape) == volume.shape and from_tensor.dtype == torch.uint8
    assert torch.equal(torch.as_tensor(from_tensor), torch.as_tensor(from_file))
    assert tuple(predictor.predict(torch.from_numpy(volume)[None]).shape) == (1, *volume.shape)


def test_2d_bundle_predicts_a_volume_slice_by_slice(tmp_path):
    predictor = _load("hyperunet_csmri", CSMRI, tmp_path)
    assert isinstance(predictor, DensePredictor) and predictor.image_spatial_dims == 2
    with torch.no_grad():
        predictor.network.network.gain.fill_(0.5)  # the residual branch contributes (gain 0 returns the input)
    volume = torch.from_numpy(np.random.default_rng(2).random((1, 30, 34, 3)).astype(np.float32))
    out = predictor.predict(volume)
    per_slice = torch.stack([torch.as_tensor(predictor.predict(volume[..., z])) for z in range(3)], dim=-1)
    assert tuple(out.shape) == (1, 30, 34, 3) and torch.equal(torch.as_tensor(out), per_slice)
    assert not torch.equal(per_slice[..., 0], per_slice[..., 1])
    path = _nifti(tmp_path / "brain_volume.nii.gz", volume[0].numpy())
    assert torch.allclose(torch.as_tensor(predictor.predict(path)), per_slice[0], atol=1e-6)
    four_d = _nifti(tmp_path / "four_d.nii.gz", np.zeros((30, 34, 3, 2)))
    with pytest.raises(ValueError, match="four_d.nii.gz' holds 2 channels"):
        predictor.predict(four_d)
    with pytest.raises(ValueError, match="single-channel"):  # (X, Y, Z) could be a 30-channel image
        predictor.predict(volume[0])


def test_multimodal_predictor_checks_every_modality(tmp_path):
    predictor = _load("nerdunet_wmh", WMH, tmp_path)
    assert isinstance(predictor, MultiModalPredictor) and predictor.image_spatial_dims == 3
    rng = np.random.default_rng(3)
    t1 = _nifti(tmp_path / "T1.nii.gz", rng.random((40, 44, 4)))
    bad = rng.random((40, 44, 4))
    bad[0, 0, 0] = np.nan
    flair = _nifti(tmp_path / "FLAIR.nii.gz", bad)
    with pytest.raises(NonFiniteImageError, match="FLAIR.nii.gz"):
        predictor.predict([t1, flair])
    flat = _nifti(tmp_path / "FLAIR_2d.nii.gz", rng.random((40, 44)))
    with pytest.raises(ValueError, match="FLAIR_2d.nii.gz"):
        predictor.predict([t1, flat])
    assert tuple(predictor.predict([t1, t1]).shape) == (1, 40, 44, 4)


def test_bundle_archive_loads_like_its_folder(tmp_path):
    """``load`` takes a ``.zip`` of a bundle (in one top-level folder, as ``monai.bundle`` zips it)."""
    root = tmp_path / "njetunet_la"
    folder = _load("njetunet_la", LA, root)
    (root / "configs").mkdir()
    for name in ("inference.json", "metadata.json"):
        shutil.copy(_config("njetunet_la").parent / name, root / "configs" / name)
    archive = shutil.make_archive(str(tmp_path / "la_bundle"), "zip", root_dir=tmp_path, base_dir="njetunet_la")
    zipped = monai_implicit.bundles.load(archive, "cpu", **LA)
    assert zipped.extracted is not None and Path(zipped.extracted.name, "njetunet_la", "configs").is_dir()
    volume = torch.from_numpy(np.random.default_rng(4).random((40, 36, 3)).astype(np.float32))
    assert torch.equal(torch.as_tensor(zipped.predict(volume)), torch.as_tensor(folder.predict(volume)))
    empty = shutil.make_archive(str(tmp_path / "not_a_bundle"), "zip", root_dir=root / "models")
    with pytest.raises(ValueError, match=r"not_a_bundle.zip' has no configs/ folder"):
        monai_implicit.bundles.load(empty, "cpu")
