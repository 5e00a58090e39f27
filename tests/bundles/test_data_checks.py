"""The bundles' data checks: NaN voxels, unreadable files and image/label grid mismatches are refused, naming the
files, before training starts; every lesion-wise value a bundle logs is a bounded fraction.

No test here trains: each parses the configs and runs the data-loading part only.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.bundle import ConfigParser, ConfigWorkflow
from monai.transforms import Compose

from monai_implicit.data import load_datalist
from monai_implicit.metrics import BOUNDED_LESION_METRICS
from monai_implicit.transforms import CheckedLoadImaged, GridMismatchError, ImageReadError, NonFiniteImageError

REPO = Path(__file__).resolve().parents[2]
BUNDLES = REPO / "bundles"
NAMES = ("ckcnn_rf_localization", "hyperunet_csmri", "hyperunet_lits", "nerdunet_wmh", "njetunet_la")


def _nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return str(path)


def _chain(error: BaseException) -> list[BaseException]:
    """The error and its causes (MONAI wraps errors of config expressions and transforms in RuntimeErrors)."""
    chain = []
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def _case(folder: Path, name: str, image_affine: np.ndarray, label_affine: np.ndarray, label_shape=(12, 10, 6)):
    rng = np.random.default_rng(0)
    image = _nifti(folder / "imagesTr" / f"{name}.nii.gz", rng.normal(size=(12, 10, 6)).astype(np.float32),
                   image_affine)
    label = _nifti(folder / "labelsTr" / f"{name}.nii.gz", np.zeros(label_shape, np.uint8), label_affine)
    return {"image": image, "label": label}


def _datalist(folder: Path, items: list[dict]) -> str:
    path = folder / "dataset.json"
    path.write_text(json.dumps({"training": items}))
    return str(path)


def test_load_datalist_refuses_label_on_another_grid(tmp_path):
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    shifted = affine.copy()
    shifted[:3, 3] = (0.0, 0.0, 5.0)  # same shape, origin two slices away: a label for other slices
    good = _case(tmp_path, "good", affine, affine + 1e-5)  # float rounding in headers is tolerated
    moved = _case(tmp_path, "moved", affine, shifted)
    cropped = _case(tmp_path, "cropped", affine, affine, label_shape=(12, 10, 5))
    assert load_datalist(_datalist(tmp_path, [good])) == [good]
    for case in (moved, cropped):
        with pytest.raises(GridMismatchError) as err:
            load_datalist(_datalist(tmp_path, [good, case]))
        assert case["image"] in str(err.value) and case["label"] in str(err.value)
    # images listed for inference only, or the check switched off, are not compared
    assert len(load_datalist(_datalist(tmp_path, [moved]), keys=("image",))) == 1
    assert len(load_datalist(_datalist(tmp_path, [moved]), grid_keys=None)) == 1


def test_load_datalist_checks_every_modality_and_names_unreadable_headers(tmp_path):
    affine = np.eye(4)
    t1 = _nifti(tmp_path / "s1" / "T1.nii.gz", np.zeros((8, 8, 4), np.float32), affine)
    flair = _nifti(tmp_path / "s1" / "FLAIR.nii.gz", np.zeros((8, 8, 3), np.float32), affine)  # one slice short
    label = _nifti(tmp_path / "s1" / "wmh.nii.gz", np.zeros((8, 8, 4), np.uint8), affine)
    with pytest.raises(GridMismatchError, match="FLAIR.nii.gz"):
        load_datalist(_datalist(tmp_path, [{"image": [t1, flair], "label": label}]))
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not a nifti file at all")
    with pytest.raises(ImageReadError, match="broken.nii.gz"):
        load_datalist(_datalist(tmp_path, [{"image": str(broken), "label": label}]))


def test_grid_mismatch_stops_a_bundle_before_training(tmp_path):
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    shifted = affine.copy()
    shifted[0, 3] = 10.0
    data = tmp_path / "data"
    items = [_case(data, f"case{i}", affine, affine) for i in range(3)] + [_case(data, "case3", affine, shifted)]
    _datalist(data, items)
    wf = ConfigWorkflow(
        config_file=str(BUNDLES / "hyperunet_lits" / "configs" / "train.json"), workflow_type="train",
        bundle_root=str(tmp_path), dataset_dir=str(data), num_workers=0, epochs=1,
    )
    wf.initialize()
    with pytest.raises(Exception) as err:
        wf.run()
    grid_errors = [e for e in _chain(err.value) if isinstance(e, GridMismatchError)]
    assert grid_errors and items[3]["image"] in str(grid_errors[0]) and items[3]["label"] in str(grid_errors[0])
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())  # nothing was trained


def _preprocessing(bundle: str, configs: list[str], key: str, root: Path) -> Compose:
    parser = ConfigParser()
    parser.read_config([str(BUNDLES / bundle / "configs" / c) for c in configs])
    parser["bundle_root"] = str(root)
    if "plan" in parser.config:  # the training plan a run derives from the data (hyperunet_lits): a fixed one here
        parser["plan"] = {"pixdim": [2.0, 2.0, 3.0], "hu_window": [-100.0, 250.0], "intensity_mean": 100.0,
                          "intensity_std": 50.0, "patch_size": [16, 16, 16], "batch_size": 1, "depth": 2}
    return parser.get_parsed_content(key)


def _loading_configs() -> list[tuple[str, list[str], str]]:
    out = []
    for name in NAMES:
        folder = BUNDLES / name / "configs"
        out.append((name, ["train.json"], "validate#preprocessing"))
        out.append((name, ["inference.json"], "preprocessing"))
        if "LoadImaged" in (folder / "evaluate.json").read_text():
            out.append((name, ["train.json", "evaluate.json"], "validate#preprocessing"))
    return out


@pytest.mark.parametrize("bundle,configs,key", _loading_configs())
def test_every_bundle_loads_images_with_the_checked_loader(bundle, configs, key, tmp_path):
    compose = _preprocessing(bundle, configs, key, tmp_path)
    assert any(isinstance(t, CheckedLoadImaged) for t in compose.transforms), [type(t) for t in compose.transforms]


def test_nan_voxel_in_bundle_data_names_the_count_and_the_file(tmp_path):
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    image = np.random.default_rng(0).normal(size=(12, 10, 6)).astype(np.float32)
    image[3, 4, 2] = np.nan
    case = {
        "image": _nifti(tmp_path / "nan_ct.nii.gz", image, affine),
        "label": _nifti(tmp_path / "seg.nii.gz", np.zeros((12, 10, 6), np.uint8), affine),
    }
    preprocessing = _preprocessing("hyperunet_lits", ["train.json"], "validate#preprocessing", tmp_path)
    with pytest.raises(Exception) as err:
        preprocessing(case)
    found = [e for e in _chain(err.value) if isinstance(e, NonFiniteImageError)]
    assert found and "nan_ct.nii.gz" in str(found[0]) and "1 non-finite voxel(s) (1 NaN, 0 inf)" in str(found[0])


def _lesion_metric_names(config: object) -> list[str]:
    if isinstance(config, dict):
        found = [config.get("metric_name", "ldice_bounded")] if config.get("_target_", "").endswith(
            "metrics.LesionWise") else []
        return found + [n for v in config.values() for n in _lesion_metric_names(v)]
    if isinstance(config, list):
        return [n for v in config for n in _lesion_metric_names(v)]
    return []


def test_bundles_log_only_bounded_lesion_metrics():
    names = [n for path in BUNDLES.glob("*/configs/*.json") for n in _lesion_metric_names(json.loads(path.read_text()))]
    assert names, "no lesion-wise metric found in the bundle configs"
    assert set(names) <= set(BOUNDED_LESION_METRICS), sorted(set(names) - set(BOUNDED_LESION_METRICS))
