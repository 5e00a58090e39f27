"""End-to-end tests of the njetunet_la bundle on tiny synthetic cases (1 epoch of a few iterations).

Every workflow runs with ``bundle_root`` pointing at a temporary folder, so nothing is written into the repository.
The 2-process gloo ``multi_gpu_train.json`` run is tested for nerdunet_wmh only (same overlay, slower here).
"""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from ignite.metrics import Metric
from monai.bundle import ConfigParser, ConfigWorkflow

import monai_implicit.bundles
from monai_implicit.bundles import log_training_summary
from monai_implicit.layers.njet import NJetConv, sigmas

NAME = "njetunet_la"
CONFIGS = Path(__file__).resolve().parents[2] / "bundles" / NAME / "configs"


@pytest.fixture(scope="module")
def trained(bundle_runs) -> tuple[Path, list]:
    """The session's tiny training run of this bundle (tests/conftest.py; its checks: test_bundle_contract.py), with
    the embedded MSD Task02_Heart layout, the paper's validation metrics, the sigma history its NJetSigmaLogger
    recorded and the sigmas of the trained network."""
    root, wf = bundle_runs.trained(NAME)
    assert (bundle_runs.data_dir(NAME) / "imagesTr" / "la_001.nii.gz").is_file()
    metrics = wf.parser.get_parsed_content("validate#evaluator").state.metrics
    assert {"val_dice", "val_jaccard", "val_hd", "val_hd95", "val_asd"} <= set(metrics)
    logger = next(h for h in wf.parser.get_parsed_content("train#handlers") if type(h).__name__ == "NJetSigmaLogger")
    network = wf.parser.get_parsed_content("network")
    return root, [logger.history, sigmas(network)]


def test_sigmas_logged_per_layer(trained, bundle_helpers):
    root, (history, final) = trained
    assert [r["epoch"] for r in history] == [1]
    assert history[0]["sigmas"] == {name: sigma for name, sigma, _ in final}
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    parser.update(bundle_helpers.tiny(NAME, "net"))
    net = parser.get_parsed_content("network_def")
    assert len(history[0]["sigmas"]) == sum(isinstance(m, NJetConv) for m in net.modules()) > 0
    # one TensorBoard scalar per N-Jet layer, next to the loss
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in (root / "logs").glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    assert {f"sigma/{name}" for name in history[0]["sigmas"]} <= tags and "train_loss" in tags


def test_evaluate_writes_the_papers_la_metrics(bundle_runs):
    root, wf = bundle_runs.evaluated(NAME)
    n_cases = len(wf.parser.get_parsed_content("eval_datalist"))
    values = {}
    for name in ("val_dice", "val_jaccard", "val_hd", "val_hd95", "val_asd"):
        with open(root / "eval" / f"{name}_raw.csv") as f:
            rows = list(csv.reader(f, delimiter=","))
        assert len(rows) == n_cases + 1 and rows[0][:2] == ["filename", "class0"]  # header + one row per case
        values[name] = np.array([float(r[1]) for r in rows[1:]])
    # Jaccard = Dice / (2 - Dice) for every case; HD >= HD95 >= ASD (all in mm)
    assert np.allclose(values["val_jaccard"], values["val_dice"] / (2 - values["val_dice"]), atol=1e-5)
    assert np.all(values["val_hd"] + 1e-6 >= values["val_hd95"])


def test_inference_and_load_agree(bundle_runs, bundle_helpers):
    root = bundle_runs.inferred(NAME).root  # on the embedded data
    data = bundle_runs.data_dir(NAME)
    outputs = sorted((root / "eval" / "predictions").glob("*_seg.nii.gz"))
    inputs = sorted((data / "imagesTr").glob("*.nii.gz"))
    assert len(outputs) == len(inputs) == 3
    predictor = monai_implicit.bundles.load(root, "cpu", CONFIGS / "inference.json",
                                            **bundle_helpers.tiny(NAME, "net", "data"))
    assert not any(isinstance(m, NJetConv) for m in predictor.network.modules())  # baked to plain convolutions
    for src, out in zip(inputs, outputs):
        ref, seg = nib.load(str(src)), nib.load(str(out))
        assert seg.shape == ref.shape and np.allclose(seg.affine, ref.affine)
        pred = predictor.predict(str(src))
        assert tuple(pred.shape) == ref.shape and np.allclose(pred.affine.numpy(), ref.affine)
        # the baked predictor reproduces the inference workflow run on the N-Jet network
        assert np.mean(np.asarray(pred) != np.asarray(seg.dataobj)) < 1e-3


class ScheduledScore(Metric):
    """A key validation metric rigged to return ``scores[epoch]`` (which validation is better is then known)."""

    def __init__(self, scores: dict) -> None:
        self.scores, self.engine = scores, None
        super().__init__()

    def attach(self, engine, name, usage="epoch_wise") -> None:
        self.engine = engine
        super().attach(engine, name, usage)

    def reset(self) -> None:
        pass

    def update(self, output) -> None:
        pass

    def compute(self) -> float:
        return self.scores[self.engine.state.epoch]


def test_resume_keeps_best_model_and_falls_back(bundle_runs, bundle_helpers, tmp_path):
    """train.json wiring: the best metric survives a resume, and a truncated newest checkpoint is skipped."""
    data = str(bundle_runs.data_dir(NAME))

    def train(epochs: int, scores: dict) -> ConfigWorkflow:
        wf = bundle_helpers.workflow(NAME, ["train.json"], tmp_path, epochs=epochs, dataset_dir=data,
                                     **{"validate#key_metric": {"val_score": ScheduledScore(scores)}})
        wf.run()
        wf.finalize()
        return wf

    models = tmp_path / "models"
    train(2, {1: 0.5, 2: 0.8})
    best = (models / "model.pt").read_bytes()
    wf = train(3, {3: 0.6})  # resumed at epoch 2; epoch 3 validates worse
    assert (models / "model.pt").read_bytes() == best
    summary = log_training_summary(wf.trainer, wf.parser.get_parsed_content("validate#evaluator"), str(models))
    assert (summary["best_metric_epoch"], summary["best_metric"]) == (2, 0.8)
    assert [p.name for p in sorted(models.glob("checkpoint_epoch=*.pt"))] == ["checkpoint_epoch=2.pt",
                                                                             "checkpoint_epoch=3.pt"]

    newest = models / "checkpoint_epoch=3.pt"
    newest.write_bytes(newest.read_bytes()[:1000])
    wf = train(3, {3: 0.9})  # falls back to epoch 2, redoes epoch 3, which is now better
    assert (models / "model.pt").read_bytes() != best
    net = wf.parser.get_parsed_content("network")
    saved = torch.load(models / "model.pt", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in net.state_dict().items())
    summary = log_training_summary(wf.trainer, wf.parser.get_parsed_content("validate#evaluator"), str(models))
    assert (summary["best_metric_epoch"], summary["best_metric"]) == (3, 0.9)
