"""Bundle discovery and training plans of the MONAI Label app (no MONAI Label needed).

The training plan is checked by merging its config files with MONAI's own ``ConfigParser`` (the merge
``monai.bundle run --config_file [...]`` performs), not by reading back what the planner wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from monai.bundle import ConfigParser

from monai_implicit.apps.label.bundles import (
    default_bundles_dir,
    find_segmentation_bundles,
    read_segmentation_bundle,
    select_bundles,
)
from monai_implicit.apps.label.training import (
    TrainingFailed,
    TrainPlan,
    check_overrides,
    checkpoint_epoch,
    plan_training,
    run_training,
    validation_interval,
    write_datalist,
)

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "hyperunet_lits"


def _metadata(outputs: dict, spatial_shape=("8*n", "8*n", "8*n")) -> dict:
    return {
        "version": "1.2.3",
        "description": "toy",
        "network_data_format": {
            "inputs": {"image": {"type": "image", "format": "magnitude", "spatial_shape": list(spatial_shape)}},
            "outputs": outputs,
        },
    }


def _bundle(root: Path, name: str, outputs: dict, inference: bool = True, **kwargs) -> Path:
    folder = root / name / "configs"
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text(json.dumps(_metadata(outputs, **kwargs)))
    if inference:
        (folder / "inference.json").write_text("{}")
    return folder.parent


SEG = {"pred": {"format": "segmentation", "channel_def": {"0": "background", "1": "left", "2": "right"}}}


@pytest.fixture
def bundle_copy(tmp_path) -> Path:
    """The real hyperunet_lits configs in a temporary bundle folder (training plans write into it)."""
    dst = tmp_path / "bundles" / "hyperunet_lits"
    shutil.copytree(BUNDLE, dst, ignore=shutil.ignore_patterns("data", "models", "logs", "eval", "__pycache__"))
    return dst


def test_real_bundle_is_served_with_its_channel_def():
    assert default_bundles_dir() == REPO / "bundles"
    bundle = find_segmentation_bundles()["hyperunet_lits"]
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    channel_def = meta["network_data_format"]["outputs"]["pred"]["channel_def"]
    expected = {name: int(value) for value, name in channel_def.items() if name != "background"}
    assert bundle.labels == expected == {"liver": 1, "tumour": 2}
    assert bundle.spatial_dims == 3 and bundle.version == meta["version"]
    assert bundle.train_config == BUNDLE / "configs" / "train.json"
    assert bundle.checkpoint == BUNDLE / "models" / "model.pt"
    assert [b.name for b in select_bundles(models="hyperunet_lits")] == ["hyperunet_lits"]


def test_discovery_skips_non_segmentation_folders(tmp_path):
    _bundle(tmp_path, "seg2d", SEG, spatial_shape=(16, 16))
    _bundle(tmp_path, "classifier", {"pred": {"format": "classification", "channel_def": {"0": "a"}}})
    _bundle(tmp_path, "no_inference", SEG, inference=False)
    (tmp_path / "not_a_bundle").mkdir()
    (tmp_path / "README.md").write_text("x")
    found = find_segmentation_bundles(tmp_path)
    assert list(found) == ["seg2d"]
    assert found["seg2d"].labels == {"left": 1, "right": 2} and found["seg2d"].spatial_dims == 2
    assert found["seg2d"].train_config is None and found["seg2d"].multi_gpu_config is None
    assert [b.name for b in select_bundles(tmp_path, "all")] == ["seg2d"]
    assert [b.name for b in select_bundles(tmp_path, None)] == ["seg2d"]


@pytest.mark.parametrize(
    "models, match",
    [
        ("classifier", "no segmentation output"),
        ("no_inference", "inference.json"),
        ("missing", "does not exist"),
        ("seg, ../seg", "folder names"),
    ],
)
def test_select_explains_why_a_model_is_not_served(tmp_path, models, match):
    _bundle(tmp_path, "seg", SEG)
    _bundle(tmp_path, "classifier", {"pred": {"format": "classification", "channel_def": {"0": "a"}}})
    _bundle(tmp_path, "no_inference", SEG, inference=False)
    with pytest.raises((ValueError, FileNotFoundError), match=match) as err:
        select_bundles(tmp_path, models)
    if "../" not in models:
        assert "['seg']" in str(err.value)  # lists what can be served


@pytest.mark.parametrize(
    "channel_def, match",
    [
        ({"0": "background"}, "no foreground"),
        ({"x": "liver"}, "integers"),
        (None, "channel_def"),
    ],
)
def test_bad_channel_def(tmp_path, channel_def, match):
    folder = _bundle(tmp_path, "b", {"pred": {"format": "segmentation", "channel_def": channel_def}})
    with pytest.raises(ValueError, match=match):
        read_segmentation_bundle(folder)


def test_no_bundle_at_all(tmp_path):
    with pytest.raises(ValueError, match="no segmentation bundle"):
        select_bundles(tmp_path)
    with pytest.raises(FileNotFoundError):
        find_segmentation_bundles(tmp_path / "missing")


@pytest.mark.parametrize("final_epoch", list(range(1, 31)))
@pytest.mark.parametrize("bundle_interval", [1, 4, 10])
def test_validation_interval_definition(final_epoch, bundle_interval):
    interval = validation_interval(final_epoch, bundle_interval)
    # brute force over every candidate: validation at the final epoch, never rarer than the bundle asks
    candidates = [d for d in range(1, bundle_interval + 1) if final_epoch % d == 0]
    assert interval == max(candidates)
    assert final_epoch % interval == 0 and interval <= bundle_interval


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_validation_interval_rejects(bad):
    with pytest.raises(ValueError, match="positive integer"):
        validation_interval(bad, 10)


def test_check_overrides():
    train = json.loads((BUNDLE / "configs" / "train.json").read_text())
    ok = {"num_workers": 0, "patch_size": [16, 16, 8], "train#dataset#cache_rate": 0.5, "network_def#dropout": 0.0}
    assert check_overrides(ok, train) == ok
    assert check_overrides(None, train) == {}
    bad = [
        ({"no_such_id": 1}, "not a config id"),
        ({"num_workers": "$__import__('os').system('true')"}, "expressions"),
        ({"num_workers": "@epochs"}, "expressions"),
        ({"network_def": {"_target_": "torch.nn.Identity"}}, "_target_"),
        ({"+train#handlers": []}, "config ids"),
        ({"patch_size": [16, "%epochs", 8]}, "expressions"),
    ]
    for overrides, match in bad:
        with pytest.raises(ValueError, match=match):
            check_overrides(overrides, train)
    with pytest.raises(TypeError, match="JSON value"):
        check_overrides({"num_workers": object()}, train)
    with pytest.raises(TypeError, match="object"):
        check_overrides([("num_workers", 0)], train)


def test_write_datalist(tmp_path):
    image, label = tmp_path / "a.nii.gz", tmp_path / "a_seg.nii.gz"
    image.write_bytes(b"0")
    label.write_bytes(b"0")
    path = write_datalist([{"image": str(image), "label": str(label), "extra": 1}], tmp_path / "out")
    content = json.loads(path.read_text())
    assert content["training"] == [{"image": str(image), "label": str(label)}]
    with pytest.raises(ValueError, match="no 'label'"):
        write_datalist([{"image": str(image)}], tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="missing"):
        write_datalist([{"image": str(image), "label": str(tmp_path / "missing.nii.gz")}], tmp_path / "out")


def test_checkpoint_epoch(tmp_path):
    assert checkpoint_epoch(tmp_path / "none") == 0
    for name in ("checkpoint_epoch=2.pt", "checkpoint_epoch=11.pt", "model.pt", "checkpoint_epoch=99.pt.tmp"):
        (tmp_path / name).write_bytes(b"")
    assert checkpoint_epoch(tmp_path) == 11


def _merged(plan: TrainPlan) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(plan.configs)
    return parser


def test_plan_fresh_run_on_datastore(bundle_copy, tmp_path):
    bundle = read_segmentation_bundle(bundle_copy)
    data = tmp_path / "datastore"
    data.mkdir()
    (data / "dataset.json").write_text('{"training": []}')
    plan = plan_training(bundle, max_epochs=3, dataset_dir=data, overrides={"num_workers": 0}, device="cpu")
    assert plan.command[:5] == [sys.executable, "-m", "monai.bundle", "run", "--config_file"]
    assert json.loads(plan.command[5]) == plan.configs
    assert plan.configs == [str(bundle_copy / "configs" / "train.json"), str(plan.overrides_file)]
    assert "--meta_file" in plan.command and "--logging_file" in plan.command
    assert (plan.first_epoch, plan.final_epoch, plan.multi_gpu) == (1, 3, False)
    parser = _merged(plan)
    assert parser["epochs"] == 3 and parser["dataset_dir"] == str(data.resolve())
    assert parser["num_workers"] == 0 and parser["resume"] is True
    assert parser["val_interval"] == 3  # largest divisor of 3 that is <= the bundle's 10: validate at the end
    assert parser["device"] == "$torch.device('cpu')" and parser["amp"] is False
    # untouched ids keep the bundle's values
    original = json.loads((bundle_copy / "configs" / "train.json").read_text())
    assert parser["patch_size"] == original["patch_size"] and parser["train#handlers"] == original["train"]["handlers"]


def test_plan_resumes_and_continues_the_epoch_count(bundle_copy):
    bundle = read_segmentation_bundle(bundle_copy)
    (bundle_copy / "models").mkdir()
    (bundle_copy / "models" / "checkpoint_epoch=4.pt").write_bytes(b"")
    (bundle_copy / "models" / "model.pt").write_bytes(b"")
    plan = plan_training(bundle, max_epochs=2)
    parser = _merged(plan)
    assert (plan.first_epoch, plan.final_epoch) == (5, 6) and parser["epochs"] == 6
    assert parser["val_interval"] == 6
    assert "dataset_dir" not in plan.overrides and "device" not in plan.overrides
    # resuming from a checkpoint: the served model is not loaded on top of it
    assert all(h.get("_target_") != "CheckpointLoader" for h in parser["train#handlers"])

    fresh = _merged(plan_training(bundle, max_epochs=2, resume=False, val_interval=1))
    assert fresh["epochs"] == 2 and fresh["resume"] is False and fresh["val_interval"] == 1
    loader = fresh["train#handlers"][-1]  # pretrained: the served weights as the starting point
    assert loader["_target_"] == "CheckpointLoader" and loader["load_path"] == str(bundle_copy / "models" / "model.pt")
    no_pretrained = _merged(plan_training(bundle, max_epochs=2, resume=False, pretrained=False))
    assert all(h.get("_target_") != "CheckpointLoader" for h in no_pretrained["train#handlers"])


def test_plan_multi_gpu_uses_the_bundle_config(bundle_copy):
    bundle = read_segmentation_bundle(bundle_copy)
    plan = plan_training(bundle, max_epochs=1, gpus=[0, 2], device="cuda")
    assert plan.multi_gpu and plan.env["CUDA_VISIBLE_DEVICES"] == "0,2"
    assert plan.command[1:3] == ["-m", "torch.distributed.run"] and "--nproc_per_node=2" in plan.command
    assert plan.configs[1] == str(bundle_copy / "configs" / "multi_gpu_train.json")
    assert "device" not in plan.overrides  # the multi-GPU config picks the device from LOCAL_RANK
    (bundle_copy / "configs" / "multi_gpu_train.json").unlink()
    with pytest.raises(FileNotFoundError, match="multi_gpu_train.json"):
        plan_training(read_segmentation_bundle(bundle_copy), max_epochs=1, gpus=[0, 1])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"max_epochs": 0}, ValueError, "max_epochs"),
        ({"max_epochs": 1, "device": "cuda;rm"}, ValueError, "device"),
        ({"max_epochs": 1, "val_fraction": 1.0}, ValueError, "val_fraction"),
        ({"max_epochs": 1, "val_interval": 0}, ValueError, "val_interval"),
        ({"max_epochs": 1, "gpus": [0, -1]}, ValueError, "gpus"),
        ({"max_epochs": 1, "dataset_dir": "/nonexistent"}, FileNotFoundError, "dataset.json"),
        ({"max_epochs": 1, "overrides": {"epochs": "$1"}}, ValueError, "expressions"),
    ],
)
def test_plan_rejects(bundle_copy, kwargs, error, match):
    with pytest.raises(error, match=match):
        plan_training(read_segmentation_bundle(bundle_copy), **kwargs)


def test_plan_needs_a_train_config(tmp_path):
    bundle = read_segmentation_bundle(_bundle(tmp_path, "seg", SEG))
    with pytest.raises(FileNotFoundError, match="train.json"):
        plan_training(bundle, max_epochs=1)


def test_run_training_streams_and_reports_failures(tmp_path):
    lines: list[str] = []
    env = dict(os.environ)
    ok = TrainPlan([sys.executable, "-c", "print('epoch 1'); print('done')"], env, {}, tmp_path / "o.json", 1, 1)
    assert run_training(ok, lines.append) >= 0
    assert lines == ["epoch 1", "done"]
    bad = TrainPlan([sys.executable, "-c", "import sys; print('loss nan'); sys.exit(3)"], env, {}, tmp_path, 1, 1)
    with pytest.raises(TrainingFailed, match=r"status 3:\nloss nan"):
        run_training(bad, lambda line: None)
