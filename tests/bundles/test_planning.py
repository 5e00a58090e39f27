"""training_plan: planned once from the fingerprint, read back on resume, explicit values win; select_channels."""

from __future__ import annotations

import json

import pytest
import torch

from monai_implicit.bundles import select_channels, training_plan
from monai_implicit.data import make_lits_like_dataset


@pytest.fixture(scope="module")
def datalist(tmp_path_factory):
    return make_lits_like_dataset(tmp_path_factory.mktemp("lits") / "ds", num_cases=2, fov_mm=(64.0, 64.0, 48.0),
                                  spacing=(2.0, 2.0, 3.0))


def test_plan_is_written_then_read_back_on_resume(datalist, tmp_path):
    ckpt = tmp_path / "models"
    plan = training_plan(datalist, ckpt, device="cpu")
    saved = json.loads((ckpt / "plan.json").read_text())
    assert saved["pixdim"] == plan["pixdim"] and saved["patch_size"] == plan["patch_size"]
    # the data are 32x32x16 voxels of 2x2x3 mm, within the CPU budget: the median spacing is kept
    assert plan["pixdim"] == pytest.approx([2.0, 2.0, 3.0])
    assert all(p % 2 ** plan["depth"] == 0 for p in plan["patch_size"])
    # a resumed run reads the file, even if planning would now give something else (e.g. another device)
    saved["patch_size"] = [16, 16, 16]
    (ckpt / "plan.json").write_text(json.dumps(saved))
    assert training_plan(datalist, ckpt, device="cpu", resume=True)["patch_size"] == [16, 16, 16]
    # an explicit value equal to the saved one is fine (a scalar stands for every axis), a different one is refused
    assert training_plan(datalist, ckpt, resume=True, patch_size=16)["patch_size"] == [16, 16, 16]
    with pytest.raises(ValueError, match="patch_size"):
        training_plan(datalist, ckpt, resume=True, patch_size=[32, 32, 16])
    # a new run (resume false) plans anew and explicit values win
    fresh = training_plan(datalist, ckpt, resume=False, pixdim=[4.0, 4.0, 3.0], batch_size=3)
    assert fresh["pixdim"] == pytest.approx([4.0, 4.0, 3.0]) and fresh["batch_size"] == 3
    assert json.loads((ckpt / "plan.json").read_text())["batch_size"] == 3


def test_select_channels_merges_classes():
    pred = torch.zeros(3, 4, 4)
    pred[0] = 1
    pred[:, 0, 0] = torch.tensor([0.0, 1.0, 0.0])  # liver
    pred[:, 1, 1] = torch.tensor([0.0, 0.0, 1.0])  # tumour
    label = pred.clone()
    (p, ), (y, ) = select_channels([1, 2])([{"pred": pred, "label": label}])
    assert p.shape == (1, 4, 4) and p.sum() == 2 and p[0, 0, 0] == 1 and p[0, 1, 1] == 1
    (p, ), _ = select_channels(2)([{"pred": pred, "label": label}])
    assert p.sum() == 1 and p[0, 1, 1] == 1
    with pytest.raises(ValueError, match="index"):
        select_channels([])
    with pytest.raises(ValueError, match="shape"):
        select_channels([1, 5])([{"pred": pred, "label": label}])
