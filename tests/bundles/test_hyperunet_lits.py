"""End-to-end tests of the hyperunet_lits bundle on tiny synthetic volumes (1-3 epochs of a few iterations).

Every workflow runs with ``bundle_root`` pointing at a temporary folder, so nothing is written into the repository.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow

from monai_implicit.bundles import bundle_root, load
from monai_implicit.data import load_datalist
from monai_implicit.handlers import latest_checkpoint

NAME = "hyperunet_lits"
BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / NAME
CONFIGS = BUNDLE / "configs"


@pytest.fixture(scope="module")
def trained(bundle_runs) -> Path:
    """The session's tiny training run of this bundle (tests/conftest.py; its checks: test_bundle_contract.py)."""
    return bundle_runs.trained(NAME).root


def test_bundle_root(tmp_path, monkeypatch):
    # the workflow ids of train.json: test_bundle_contract.py
    # bundle_root is the bundle folder whatever the working directory
    monkeypatch.chdir(tmp_path)
    wf = ConfigWorkflow(config_file=str(CONFIGS / "train.json"), workflow_type="train")
    wf.parser.parse(reset=True)
    wf._is_initialized = True
    assert Path(wf.bundle_root) == BUNDLE.resolve()
    with pytest.raises(ValueError, match="bundle_root"):
        bundle_root()


def test_resume_after_interruption(trained, bundle_helpers, tmp_path):
    class Interrupt(RuntimeError):
        pass

    def crash_at_epoch_3(engine):
        if engine.state.epoch == 3:
            raise Interrupt("simulated interruption")

    root = tmp_path / "copy"  # the shared run keeps its 1-epoch weights (and without another test's export)
    shutil.copytree(trained, root, ignore=shutil.ignore_patterns("model.ts"))
    wf = bundle_helpers.workflow(NAME, ["train.json"], root, epochs=3)
    trainer = wf.trainer
    trainer.add_event_handler(Events.EPOCH_STARTED, crash_at_epoch_3)
    with pytest.raises(RuntimeError) as failure:  # ConfigExpression wraps the error raised in the expression
        wf.run()
    assert isinstance(failure.value.__cause__, Interrupt)
    ckpt = latest_checkpoint(root / "models")
    assert ckpt.endswith("checkpoint_epoch=2.pt")
    # no temporary leftovers: checkpoints and the run's plan only
    assert all(p.suffix == ".pt" or p.name == "plan.json" for p in (root / "models").iterdir())
    saved = torch.load(ckpt, weights_only=False)
    assert saved["trainer"]["iteration"] == 2 * saved["trainer"]["epoch_length"]
    assert {"model", "optimizer", "lr_scheduler"} <= set(saved)

    # re-running the same command continues at epoch 3 with the saved optimizer/scheduler state
    wf = bundle_helpers.workflow(NAME, ["train.json"], root, epochs=3)
    started = []
    wf.trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: started.append(e.state.epoch))
    wf.run()
    assert started == [3]
    assert wf.trainer.state.epoch == 3
    optimizer = wf.parser.get_parsed_content("optimizer")
    steps = {float(s["step"]) for s in optimizer.state_dict()["state"].values()}
    assert steps == {float(wf.trainer.state.iteration)}  # Adam's step count continued, not restarted
    scheduler = wf.parser.get_parsed_content("lr_scheduler")
    assert scheduler.last_epoch == 3


def test_evaluate_writes_a_summary(bundle_runs):
    # one row per case in each per-case table, the metrics in metrics.csv: test_bundle_contract.py
    out = bundle_runs.evaluated(NAME).root / "eval"
    assert (out / "metrics_summary.csv").is_file() or any(out.glob("*summary*.csv"))


def test_inference_and_predictor_agree(trained, bundle_runs, bundle_helpers):
    bundle_runs.inferred(NAME)  # on the embedded data
    images = bundle_runs.data_dir(NAME) / "imagesTr"
    overrides = bundle_helpers.tiny(NAME, "net", "data")
    outputs = sorted((trained / "eval" / "predictions").glob("*_seg.nii.gz"))
    inputs = sorted(images.glob("*.nii.gz"))
    assert len(outputs) == len(inputs)
    predictor = load(BUNDLE, device="cpu", checkpoint=trained / "models" / "model.pt", **overrides)
    for src, out in zip(inputs, outputs):
        ref, seg = nib.load(str(src)), nib.load(str(out))
        assert seg.shape == ref.shape and np.allclose(seg.affine, ref.affine)
        pred = predictor.predict(str(src))
        assert tuple(pred.shape) == ref.shape and np.allclose(pred.affine.numpy(), ref.affine)
        # baked predictor == the inference workflow on the un-baked network (up to float ties between classes)
        assert np.mean(np.asarray(pred) != np.asarray(seg.dataobj)) < 1e-3
    # tensor input: channel-first MetaTensor keeps its shape and affine
    from monai.transforms import LoadImage

    image = LoadImage(image_only=True, ensure_channel_first=True)(str(inputs[0]))
    pred = predictor.predict(image)
    assert pred.shape == image.shape and torch.allclose(pred.affine, image.affine)
    with pytest.raises(ValueError, match="single-channel"):
        predictor.predict(torch.zeros(2, 8, 8, 8))
    with pytest.raises(FileNotFoundError, match="nope.nii.gz"):
        predictor.predict(str(trained / "nope.nii.gz"))
    # un-baked: the network is in eval mode (BatchNorm running stats, no dropout) and agrees with the baked one
    raw = load(BUNDLE, device="cpu", checkpoint=trained / "models" / "model.pt", bake=False, **overrides)
    assert not raw.network.training
    assert np.mean(np.asarray(raw.predict(str(inputs[0]))) != np.asarray(predictor.predict(str(inputs[0])))) < 1e-3
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load(BUNDLE, device="cpu", checkpoint=trained / "models" / "missing.pt")


@pytest.mark.slow
def test_multi_gpu_train_gloo(tmp_path, bundle_helpers):
    # its own 4-case dataset, generated by rank 0 while rank 1 waits: 2 training and 2 validation cases, one per rank
    options = {**bundle_helpers.tiny(NAME, "train")["synthetic_options"], "num_cases": 4}
    bundle_helpers.multi_gpu_train(NAME, {"synthetic_options": options, "bundle_root": str(tmp_path),
                                          "val_fraction": 0.5})
    assert (tmp_path / "models" / "checkpoint_epoch=1.pt").is_file() and (tmp_path / "models" / "model.pt").is_file()
    assert len(list((tmp_path / "data" / "synthetic_lits" / "imagesTr").iterdir())) == 4


def test_train_2d_overlay(tmp_path, bundle_runs, bundle_helpers):
    wf = bundle_helpers.workflow(NAME, ["train.json", "train_2d.json"], tmp_path,
                                 dataset_dir=str(bundle_runs.data_dir(NAME)), slice_size=[16, 16],
                                 patch_size=[16, 16, 1], batch_size=2, num_samples=2)
    wf.run()
    assert wf.parser.get_parsed_content("network_def").spatial_dims == 2
    assert isinstance(wf.parser.get_parsed_content("loss"), __import__("monai").losses.DiceLoss)
    assert latest_checkpoint(tmp_path / "models").endswith("epoch=1.pt")


def test_dynunet_overlay_is_the_peer_on_the_same_pipeline(tmp_path, bundle_runs, bundle_helpers):
    """train_dynunet.json swaps the network for MONAI's DynUNet (nnU-Net topology) with the plan's depth and keeps
    everything else (data, plan, loss, schedule, validation) of train.json; its checkpoints go to models_dynunet/."""
    from monai.networks.nets import DynUNet

    # DynUNet has its own arguments (no tiny network_def settings) and needs at least three levels
    wf = bundle_helpers.workflow(NAME, ["train.json", "train_dynunet.json"], tmp_path, tiny=("data", "train"),
                                 patch_size=[16, 16, 16], depth=2, dataset_dir=str(bundle_runs.data_dir(NAME)),
                                 dynunet_filters=2)
    wf.run()
    net = wf.parser.get_parsed_content("network_def")
    plan = json.loads((tmp_path / "models_dynunet" / "plan.json").read_text())
    assert isinstance(net, DynUNet) and len(net.strides) == plan["depth"] + 1
    assert latest_checkpoint(tmp_path / "models_dynunet").endswith("epoch=1.pt")
    assert (tmp_path / "models_dynunet" / "model.pt").is_file() and not (tmp_path / "models").exists()


def test_robustness_both_networks(trained, bundle_runs, bundle_helpers, tmp_path):
    levels = {"gaussian": [0.0, 0.2], "salt_pepper": [0.0, 0.1], "speckle": [0.0, 0.5]}
    common = {"noise_levels": levels, "output_dir": str(tmp_path)}
    robustness = ["train.json", "robustness.json"]
    wf = bundle_helpers.workflow(NAME, robustness, trained, workflow_type=None, **common)
    wf.run()
    # the plain twin: same overlay, --network_def override, its own checkpoint folder
    plain = {"network_def#_target_": "monai_implicit.networks.nets.PlainUNet", "ckpt_dir": str(tmp_path / "plain")}
    train = bundle_helpers.workflow(NAME, ["train.json"], tmp_path / "plain_root",
                                    dataset_dir=str(bundle_runs.data_dir(NAME)), **plain)
    train.run()
    wf = bundle_helpers.workflow(NAME, robustness, trained, workflow_type=None, **common, **plain)
    wf.run()
    for tag in ("HyperUNet", "PlainUNet"):
        with open(tmp_path / f"robustness_{tag}.csv") as f:
            rows = list(csv.DictReader(f))
        assert {r["noise"] for r in rows} == set(levels) and all(0.0 <= float(r["mean_dice"]) <= 1.0 for r in rows)
    assert (tmp_path / "robustness.png").stat().st_size > 1000


def test_bad_inputs(tmp_path, bundle_runs):
    # a dataset_dir that does not exist: test_bundle_contract.py; a missing and an unreadable image in the datalist
    src = bundle_runs.data_dir(NAME)
    meta = json.loads((src / "dataset.json").read_text())
    ds = tmp_path / "ds"
    (ds / "imagesTr").mkdir(parents=True)
    meta["training"][0]["image"] = str(ds / "imagesTr" / "missing.nii.gz")
    (ds / "dataset.json").write_text(json.dumps(meta))
    for item in meta["training"][1:]:
        item["image"] = str(src / item["image"])
        item["label"] = str(src / item["label"])
    (ds / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(FileNotFoundError, match="missing.nii.gz"):
        load_datalist(ds / "dataset.json")
    (ds / "imagesTr" / "missing.nii.gz").write_bytes(b"not a nifti file at all")
    with pytest.raises(ValueError, match="missing.nii.gz"):
        load_datalist(ds / "dataset.json")
    # a label with an unexpected class: test_bundle_contract.py
