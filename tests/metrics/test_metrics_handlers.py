"""Ignite handlers through a SupervisedEvaluator with MetricsSaver, a plain Engine and a bundle config."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from monai.bundle import ConfigParser
from monai.engines import SupervisedEvaluator
from monai.handlers import MetricsSaver, from_engine
from monai.metrics import compute_hausdorff_distance
from scipy import ndimage

from monai_implicit.metrics import AverageSurfaceDistance, HausdorffPercentile, LesionWise, LocalizationF1


class Threshold(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x > 0.5).float()


def lesion_data(n_cases=3, shape=(20, 18, 10), seed=0):
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n_cases):
        field = ndimage.gaussian_filter(rng.standard_normal(shape), 1.5)
        gt = field > np.quantile(field, 0.9)
        noisy = gt.astype(np.float32) * 0.8 + 0.3 * rng.random(shape)
        items.append({"image": torch.from_numpy(noisy[None]).float(), "label": torch.from_numpy(gt[None]).float(),
                      "image_meta_dict": {"filename_or_obj": f"case{i}.nii.gz"}})
    return items


def independent_lesion_recall(pred, gt):
    lab, n = ndimage.label(gt, ndimage.generate_binary_structure(3, 3))
    return 1.0 if n == 0 else sum(bool(pred[lab == i].any()) for i in range(1, n + 1)) / n


def test_supervised_evaluator_with_metrics_saver(tmp_path):
    data = lesion_data()
    spacing = (0.8, 0.8, 2.0)
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=torch.utils.data.DataLoader(data, batch_size=2),
        network=Threshold(),
        key_val_metric={"hd95": HausdorffPercentile(spacing=spacing, output_transform=from_engine(["pred", "label"]))},
        additional_metrics={
            "ltpr": LesionWise(metric_name="ltpr", output_transform=from_engine(["pred", "label"])),
            "asd": AverageSurfaceDistance(spacing=spacing, output_transform=from_engine(["pred", "label"])),
        },
    )
    MetricsSaver(save_dir=str(tmp_path), metrics="*", metric_details="*", summary_ops=["mean"],
                 batch_transform=lambda batch: [item["image_meta_dict"] for item in batch]).attach(evaluator)
    evaluator.run()

    preds = [(d["image"][0].numpy() > 0.5) for d in data]
    gts = [d["label"][0].numpy() > 0.5 for d in data]
    hd_ref = compute_hausdorff_distance(
        torch.from_numpy(np.stack(preds)[:, None]).float(), torch.from_numpy(np.stack(gts)[:, None]).float(),
        include_background=True, percentile=95, spacing=spacing,
    )
    assert evaluator.state.metrics["hd95"] == pytest.approx(hd_ref.mean().item(), abs=1e-4)
    recalls = [independent_lesion_recall(p, g) for p, g in zip(preds, gts)]
    assert evaluator.state.metrics["ltpr"] == pytest.approx(np.mean(recalls))
    assert evaluator.state.metric_details["ltpr"].shape == (3, 1)

    with open(os.path.join(tmp_path, "ltpr_raw.csv")) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["filename", "class0", "mean"]
    assert [r[0] for r in rows[1:]] == ["case0.nii.gz", "case1.nii.gz", "case2.nii.gz"]
    np.testing.assert_allclose([float(r[1]) for r in rows[1:]], recalls, atol=1e-4)
    with open(os.path.join(tmp_path, "hd95_raw.csv")) as f:
        hd_rows = list(csv.reader(f))
    np.testing.assert_allclose([float(r[1]) for r in hd_rows[1:]], hd_ref[:, 0].numpy(), atol=1e-3)
    assert os.path.exists(os.path.join(tmp_path, "metrics.csv"))


def test_localization_handler_on_plain_engine():
    y = torch.zeros(4, 1, 64)
    pred = torch.zeros(4, 1, 64)
    y[:, 0, 10] = 1
    y[:, 0, 40] = 1
    pred[:, 0, 12] = 0.9  # found
    pred[:2, 0, 41] = 0.9  # found in two of four signals
    batches = [(pred[:2], y[:2]), (pred[2:], y[2:])]
    engine = Engine(lambda e, b: b)
    LocalizationF1(metric_name="f1", tolerance=4).attach(engine, "f1")
    engine.run(batches)
    # per signal: two signals with P = R = 1, two with P = 1, R = 0.5 -> F1 = 2/3
    assert engine.state.metrics["f1"] == pytest.approx((1 + 1 + 2 / 3 + 2 / 3) / 4)
    assert engine.state.metric_details["f1"].shape == (4, 1)


def test_handlers_instantiate_from_bundle_config():
    config = {
        "hd": {"_target_": "monai_implicit.metrics.HausdorffPercentile", "percentile": 95,
               "distance_reduction": "pooled", "empty": 373.0},
        "lesion": {"_target_": "monai_implicit.metrics.LesionWise", "metric_name": "lfpr_isbi", "connectivity": 18,
                   "min_lesion_volume": 3},
        "loc": {"_target_": "monai_implicit.metrics.LocalizationF1", "tolerance": 4, "threshold": 0.1},
    }
    parser = ConfigParser(config)
    hd, lesion, loc = parser.get_parsed_content("hd"), parser.get_parsed_content("lesion"), parser.get_parsed_content(
        "loc")
    assert hd.metric_fn.distance_reduction == "pooled" and hd.metric_fn.empty == 373.0
    assert lesion.metric_fn.metric_name == "lfpr_isbi" and lesion.metric_fn.connectivity == 18
    assert loc.metric_fn.threshold == 0.1
    with pytest.raises(TypeError, match="one string"):
        LesionWise(metric_name=["ltpr", "lppv"])
