"""End-to-end tests of the ckcnn_rf_localization bundle on tiny simulated RF lines (1-2 epochs of a few iterations).

Every workflow runs with ``bundle_root`` pointing at a temporary folder, so nothing is written into the repository.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_implicit.bundles import DensePredictor, load
from monai_implicit.evaluation import read_threshold, sweep_localization_threshold
from monai_implicit.handlers import latest_checkpoint
from monai_implicit.metrics import compute_localization_f1
from monai_implicit.transforms import SaveLocalizationsd

NAME = "ckcnn_rf_localization"
REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / NAME
CONFIGS = BUNDLE / "configs"

@pytest.fixture(scope="module")
def trained(bundle_runs) -> Path:
    """The session's tiny training run of this bundle (tests/conftest.py; its checks: test_bundle_contract.py)."""
    return bundle_runs.trained(NAME).root


def test_resume_continues_from_last_checkpoint(trained, tmp_path, bundle_helpers):
    root = tmp_path / "copy"  # the shared run keeps its 1-epoch weights
    shutil.copytree(trained, root)
    wf = bundle_helpers.workflow(NAME, ["train.json"], root, epochs=2)
    started = []
    from ignite.engine import Events

    wf.trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: started.append(e.state.epoch))
    wf.run()
    assert started == [2] and latest_checkpoint(root / "models").endswith("epoch=2.pt")


def test_evaluate_tunes_threshold_and_writes_metrics(trained, bundle_runs):
    wf = bundle_runs.evaluated(NAME).workflow  # threshold_candidates [0.2, 0.5, 0.8]
    out = trained / "eval"
    with open(out / "threshold_sweep.csv") as f:
        sweep = list(csv.DictReader(f))
    assert [float(r["threshold"]) for r in sweep] == [0.2, 0.5, 0.8]
    best = max(sweep, key=lambda r: (float(r["f1"]), -float(r["threshold"])))
    tuned = read_threshold(trained / "models" / "threshold.json", default=-1.0)
    assert tuned == float(best["threshold"])
    n_lines = len(wf.parser.get_parsed_content("eval_datalist"))
    with open(out / "val_f1_raw.csv") as f:
        rows = list(csv.reader(f))
    assert len(rows) == n_lines + 1
    summary = (out / "metrics.csv").read_text()
    assert "val_f1" in summary and "val_recall" in summary and "val_f1_at_default_threshold" in summary

    # the evaluator's F1 equals an independent recomputation at the tuned threshold
    parser = wf.parser
    net = parser.get_parsed_content("network_def").eval()
    net.load_state_dict(torch.load(trained / "models" / "model.pt", weights_only=True))
    prep = parser.get_parsed_content("validate#preprocessing")
    f1 = []
    for item in parser.get_parsed_content("eval_datalist"):
        case = prep(dict(item))
        with torch.no_grad():
            prob = torch.sigmoid(net(case["image"][None].as_tensor()))
        f1.append(float(compute_localization_f1(prob, case["label"][None].as_tensor(), tuned, 4)["f1"]))
    value = float(summary.split("val_f1,")[1].split()[0].split(",")[0])
    assert value == pytest.approx(np.mean(f1), abs=1e-5)


def test_sweep_picks_best_threshold_on_a_known_output(tmp_path):
    """A network whose output is the label itself scaled by 0.6: every threshold <= 0.6 gives F1 1, above gives 0."""

    class Scaled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.logit(torch.clamp(0.6 * x, 1e-4, 1 - 1e-4)) + 0 * self.w

    label = np.zeros((1, 50), np.float32)
    label[0, [5, 20, 40]] = 1
    data = [{"image": torch.as_tensor(label), "label": torch.as_tensor(label)}]
    result = sweep_localization_threshold(Scaled(), data, lambda d: d, lambda x, n: n(x), [0.3, 0.5, 0.7],
                                          output_dir=tmp_path, threshold_file=tmp_path / "t.json", device="cpu")
    assert [r["f1"] for r in result["rows"]] == pytest.approx([1.0, 1.0, 0.0])
    assert result["best_threshold"] == 0.3 and read_threshold(tmp_path / "t.json", 0.9) == 0.3
    assert read_threshold(tmp_path / "absent.json", 0.9) == 0.9
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json"):
        read_threshold(tmp_path / "bad.json", 0.5)
    with pytest.raises(ValueError, match="thresholds"):
        sweep_localization_threshold(Scaled(), data, lambda d: d, lambda x, n: n(x), [])


def test_inference_writes_positions_and_predictor_agrees(trained, bundle_runs, bundle_helpers):
    wf = bundle_runs.inferred(NAME).workflow  # default_threshold 0.5, after the evaluation
    threshold = wf.parser.get_parsed_content("threshold")
    assert threshold == read_threshold(trained / "models" / "threshold.json", 0.5)  # tuned one when present
    lines = sorted((trained / "data" / "synthetic_rf" / "signalsTr").glob("*.npy"))
    out = trained / "eval" / "predictions"
    assert len(list(out.glob("*_bubbles.csv"))) == len(lines) == len(list(out.glob("*_prob.npy")))
    net = bundle_helpers.tiny(NAME, "net")
    predictor = load(trained, device="cpu", config_file=CONFIGS / "inference.json", **net)
    assert isinstance(predictor, DensePredictor)
    for src in lines[:3]:
        saved = np.load(out / f"{src.stem}_prob.npy")
        prob = predictor.predict(str(src))  # baked network, (L,) probabilities
        assert prob.shape == saved.shape[1:] and np.allclose(np.asarray(prob), saved[0], atol=1e-5)
        with open(out / f"{src.stem}_bubbles.csv") as f:
            positions = [int(r["position"]) for r in csv.DictReader(f)]
        p = np.concatenate([[-np.inf], saved[0].astype(np.float64), [-np.inf]])
        peaks = [i for i in range(saved.shape[1]) if p[i + 1] >= threshold and p[i + 1] > p[i] and p[i + 1] > p[i + 2]]
        assert positions == peaks  # naive strict local-maximum scan (no plateaus in float outputs)
    # tensor input keeps its length; bad inputs are named
    line = torch.as_tensor(np.load(lines[0]))
    assert predictor.predict(line).shape == line.shape
    with pytest.raises(ValueError, match="single-channel"):
        predictor.predict(torch.zeros(2, 128))
    with pytest.raises(FileNotFoundError, match="nope.npy"):
        predictor.predict(str(trained / "nope.npy"))
    # the package-wide entry point dispatches to the dense predictor for this bundle
    generic = load(trained, "cpu", CONFIGS / "inference.json", **net)
    assert isinstance(generic, DensePredictor)
    saved = np.load(out / f"{lines[0].stem}_prob.npy")[0]
    assert np.allclose(np.asarray(generic.predict(str(lines[0]))), saved, atol=1e-5)


def test_save_localizations_rejects_bad_input(tmp_path):
    saver = SaveLocalizationsd("pred", tmp_path, threshold=0.5)
    with pytest.raises(ValueError, match="single-channel"):
        saver({"pred": torch.zeros(2, 10)})
    with pytest.raises(ValueError, match="filename_or_obj"):
        saver({"pred": torch.zeros(1, 10)})


@pytest.mark.slow
def test_multi_gpu_train_gloo(trained, tmp_path, bundle_helpers):
    """Two CPU processes with the gloo backend (nccl on GPUs): DDP wrapping, distributed samplers, rank-0 saving."""
    bundle_helpers.multi_gpu_train(NAME, {"dataset_dir": str(trained / "data" / "synthetic_rf"),
                                          "bundle_root": str(tmp_path)})
    assert (tmp_path / "models" / "checkpoint_epoch=1.pt").is_file()
