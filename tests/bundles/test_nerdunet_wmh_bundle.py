"""End-to-end tests of the nerdunet_wmh bundle on tiny synthetic subjects (1 epoch of a few iterations).

Every workflow runs with ``bundle_root`` pointing at a temporary folder, so nothing is written into the repository.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.losses import DiceCELoss

import monai_implicit.bundles
from monai_implicit.bundles import MultiModalPredictor
from monai_implicit.data import wmh_subjects
from monai_implicit.losses import MaskedDiceCELoss
from monai_implicit.transforms import IgnoreLabeld

NAME = "nerdunet_wmh"
CONFIGS = Path(__file__).resolve().parents[2] / "bundles" / NAME / "configs"


@pytest.fixture(scope="module")
def trained(bundle_runs) -> Path:
    """The session's tiny training run of this bundle (tests/conftest.py; its checks: test_bundle_contract.py), with
    what is particular to this bundle: the embedded synthetic data is in the challenge layout, and the validation
    logs the lesion-wise metrics as bounded fractions."""
    root, wf = bundle_runs.trained(NAME)
    data = bundle_runs.data_dir(NAME)
    assert sorted(p.relative_to(data).as_posix() for p in data.rglob("*.nii.gz"))[:3] == [
        "GE3T/2/pre/FLAIR.nii.gz", "GE3T/2/pre/T1.nii.gz", "GE3T/2/wmh.nii.gz"]
    metrics = wf.parser.get_parsed_content("validate#evaluator").state.metrics
    assert {"val_dice", "val_ldice", "val_ltpr", "val_lfpr"} <= set(metrics)
    # every lesion-wise value logged as a fraction is a bounded one (NeRD's LDice / LFPR leave [0, 1] under merges)
    assert all(0.0 <= metrics[name] <= 1.0 for name in ("val_ldice", "val_ltpr", "val_lfpr"))
    return root


def test_ids_network_and_two_channel_input(trained, bundle_helpers):
    # the workflow ids of train.json: test_bundle_contract.py
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    net = parser.get_parsed_content("network_def")
    assert (net.in_channels, net.head_type, net.position, net.spatial_dims) == (2, "nerdc", "patch", 2)
    # the training transforms stack T1 and FLAIR as channels 0 and 1 of every 2D slice sample
    parser["bundle_root"] = str(trained)
    tiny = bundle_helpers.tiny(NAME)
    parser.update(tiny)
    item = parser.get_parsed_content("datalist")[0]
    assert [Path(p).name for p in item["image"]] == ["T1.nii.gz", "FLAIR.nii.gz"]
    sample = parser.get_parsed_content("train#preprocessing")(item)[0]
    assert tuple(sample["image"].shape) == (2, *tiny["slice_size"]) and tuple(sample["label"].shape[1:]) == (32, 48)
    flair = np.asarray(nib.load(item["image"][1]).dataobj)
    t1 = np.asarray(nib.load(item["image"][0]).dataobj)
    assert not np.allclose(t1, flair)  # two different modalities, not a duplicated channel


def test_real_layout_without_datalist_is_converted(trained, bundle_runs, tmp_path):
    # a copy of the challenge layout without dataset.json, as the real data ships
    src = bundle_runs.data_dir(NAME)
    real = tmp_path / "wmh" / "training"
    shutil.copytree(src, real, ignore=shutil.ignore_patterns("dataset.json"))
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    parser["bundle_root"] = str(tmp_path / "bundle")
    parser["dataset_dir"] = str(real)
    datalist = parser.get_parsed_content("datalist")
    assert Path(parser.get_parsed_content("datalist_file")) == tmp_path / "bundle" / "data" / "wmh_datalist.json"
    assert not (real / "dataset.json").exists()  # nothing written into the data folder
    assert len(datalist) == 3 and all(Path(d["label"]).name == "wmh.nii.gz" for d in datalist)
    # a folder that is not in the layout: the error names the expected layout and the bundle's hint
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    parser["bundle_root"] = str(tmp_path / "bundle")
    (tmp_path / "empty").mkdir()
    parser["dataset_dir"] = str(tmp_path / "empty")
    with pytest.raises(Exception) as error:
        parser.get_parsed_content("datalist_file")
    assert isinstance(error.value.__cause__, FileNotFoundError)
    assert "pre/FLAIR.nii.gz" in str(error.value.__cause__) and "--dataset_dir" in str(error.value.__cause__)


def test_masked_loss_equals_loss_on_kept_voxels():
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 6, 7)
    label = torch.randint(0, 3, (2, 1, 6, 7))
    loss = MaskedDiceCELoss(num_classes=2, ignore_value=2, batch=True)(logits, label)
    # independent: MONAI's DiceCELoss on the kept voxels only, gathered into one (1, C, N) "image"
    keep = label[:, 0] != 2
    kept_logits = logits.movedim(1, -1)[keep].T.unsqueeze(0)
    kept_label = label[:, 0][keep].view(1, 1, -1)
    ref = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)(kept_logits, kept_label)
    assert torch.allclose(loss, ref, atol=1e-6)
    # what the network predicts at ignored voxels does not matter
    changed = logits.clone()
    changed.movedim(1, -1)[~keep] = 10.0 * torch.randn(int((~keep).sum()), 2)
    assert torch.allclose(MaskedDiceCELoss()(changed, label), loss, atol=1e-6)
    with pytest.raises(ValueError, match="outside 0..1"):
        MaskedDiceCELoss()(logits, torch.full((2, 1, 6, 7), 3))
    with pytest.raises(ValueError, match="logits"):
        MaskedDiceCELoss(num_classes=3)(logits, label)


def test_ignore_label_transform_follows_the_challenge_rule():
    label = torch.tensor([[[0, 1, 2], [2, 1, 0]]])  # (1, 2, 3)
    pred = torch.tensor([[[1, 1, 1], [0, 0, 0]]])
    out = IgnoreLabeld(["pred", "label"], ignore_value=2)({"pred": pred, "label": label})
    # the official evaluation: result * (label != 2), reference = (label == 1)
    assert torch.equal(out["pred"], pred * (label != 2))
    assert torch.equal(out["label"], (label == 1).long())
    onehot = torch.stack([1 - pred[0], pred[0]]).float()
    out = IgnoreLabeld("pred")({"pred": onehot, "label": label})
    assert torch.equal(out["pred"][1], (pred[0] * (label[0] != 2)).float()) and torch.all(out["pred"].sum(0) == 1)
    with pytest.raises(ValueError, match="spatial shape"):
        IgnoreLabeld("pred")({"pred": torch.zeros(1, 2, 2), "label": label})


def test_inference_and_predictor_agree(trained, bundle_runs, bundle_helpers):
    # the per-case metric tables of the evaluation: test_bundle_contract.py
    bundle_runs.inferred(NAME)  # on the embedded data
    subjects = wmh_subjects(bundle_runs.data_dir(NAME))
    overrides = bundle_helpers.tiny(NAME, "net", "data")
    predictor = monai_implicit.bundles.load(trained, device="cpu", config_file=CONFIGS / "inference.json", **overrides)
    assert isinstance(predictor, MultiModalPredictor) and predictor.in_channels == 2
    # the package-wide entry point dispatches to the multi-modal predictor for a 2-channel network
    generic = monai_implicit.bundles.load(trained, "cpu", CONFIGS / "inference.json", **overrides)
    assert isinstance(generic, MultiModalPredictor) and generic.in_channels == 2
    assert type(generic.network) is type(predictor.network)
    assert torch.equal(generic.predict(subjects[0]["image"]), predictor.predict(subjects[0]["image"]))
    for subject in subjects:
        out = trained / "eval" / "predictions" / f"{subject['site']}_{subject['subject']}_wmh.nii.gz"
        ref, seg = nib.load(subject["image"][1]), nib.load(str(out))
        assert seg.shape == ref.shape and np.allclose(seg.affine, ref.affine)
        pred = predictor.predict(subject["image"])
        assert tuple(pred.shape) == (1, *ref.shape) and np.allclose(pred.affine.numpy(), ref.affine)
        assert np.array_equal(np.asarray(pred[0]), np.asarray(seg.dataobj))
    from monai.transforms import LoadImage

    image = LoadImage(image_only=True, ensure_channel_first=True)(subjects[0]["image"])
    assert tuple(predictor.predict(image).shape) == (1, *image.shape[1:])
    with pytest.raises(ValueError, match="2 modalities"):
        predictor.predict(image[:1])
    with pytest.raises(ValueError, match="one per modality"):
        predictor.predict(subjects[0]["image"][:1])
    with pytest.raises(FileNotFoundError, match="nope.nii.gz"):
        predictor.predict([subjects[0]["image"][0], str(trained / "nope.nii.gz")])


def test_multi_gpu_train_gloo(bundle_runs, bundle_helpers, tmp_path):
    # two validation subjects: MONAI's DistributedSampler needs at least one per rank without padding
    bundle_helpers.multi_gpu_train(NAME, {"dataset_dir": str(bundle_runs.data_dir(NAME)),
                                          "bundle_root": str(tmp_path), "val_fraction": 0.67})
    assert (tmp_path / "models" / "checkpoint_epoch=1.pt").is_file()
