"""Tuning the detection threshold of a 1D localisation network (RF micro-bubble detection).

"Continuous representation of kernels used in convolutional neural networks" (Jonker, BSc thesis, Sec. 4, Fig. 11)
scores a localisation network by the F1 of the peaks of its output above a threshold ``phi_th`` within a tolerance
``t_tol`` of the true bubbles, and tunes ``phi_th`` on the training data.

* :func:`sweep_localization_threshold` runs the trained network once per line and scores every candidate threshold
  from the same outputs (CSV + the chosen threshold as JSON next to the model);
* :func:`read_threshold` reads that JSON back (inference uses the tuned threshold when there is one).

The per-line outputs of inference are written by :class:`monai_implicit.transforms.SaveLocalizationsd`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import torch
from monai.config import PathLike

from monai_implicit.evaluation.reports import write_table
from monai_implicit.metrics import compute_localization_counts, localization_metrics_from_counts

__all__ = ["sweep_localization_threshold", "read_threshold"]

logger = logging.getLogger(__name__)


def _check_thresholds(thresholds: Sequence[float]) -> list[float]:
    values = [float(t) for t in thresholds]
    if not values or not all(np.isfinite(values)):
        raise ValueError(f"thresholds must be a non-empty sequence of finite numbers, got {thresholds!r}.")
    return values


@torch.no_grad()
def sweep_localization_threshold(
    network: torch.nn.Module,
    datalist: Sequence[dict],
    preprocessing: Callable[[dict], dict],
    inferer: Callable,
    thresholds: Sequence[float],
    tolerance: float = 4,
    min_distance: Optional[int] = None,
    output_dir: Optional[PathLike] = None,
    threshold_file: Optional[PathLike] = None,
    checkpoint: Optional[PathLike] = None,
    device: Optional[Union[str, torch.device]] = None,
    activation: Callable[[torch.Tensor], torch.Tensor] = torch.sigmoid,
) -> dict[str, Any]:
    """Mean localisation F1 (and precision, recall) of ``network`` on ``datalist`` at every threshold.

    The network runs once per line; every threshold is scored from the same probabilities, so a sweep costs one
    inference pass.  The best threshold is the one with the highest mean F1 (the lowest such threshold on ties).

    Args:
        network: the localisation network, ``(1, 1, L) -> (1, 1, L)`` logits.
        datalist: ``[{"image": ..., "label": ...}]`` (tune on the training lines, as the thesis does).
        preprocessing: deterministic transforms producing ``image`` and ``label`` ``(1, L)`` tensors.
        inferer: called as ``inferer(image (1, 1, L), network)``.
        thresholds: candidate ``phi_th`` values.
        tolerance: ``t_tol`` in samples (4 in the thesis).
        min_distance: optional minimum separation of detected peaks.
        output_dir: when given, ``threshold_sweep.csv`` (one row per threshold) is written there.
        threshold_file: when given, ``{"threshold": best, "tolerance": ..., "f1": ...}`` is written there as JSON
            (atomically), for :func:`read_threshold`.
        checkpoint: optional checkpoint to load into ``network`` first (``{"model": state_dict}`` or a state dict).
        device: where the network runs (default: where its parameters are).
        activation: maps logits to scores in [0, 1].

    Returns:
        ``{"best_threshold", "best_f1", "rows": [{"threshold", "f1", "precision", "recall"}, ...]}``.
    """
    values = _check_thresholds(thresholds)
    if not datalist:
        raise ValueError("datalist is empty: nothing to tune the threshold on.")
    if checkpoint is not None:
        state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
        network.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
    device = torch.device(device) if device is not None else next(network.parameters()).device
    network = network.to(device).eval()
    probs, labels = [], []
    for item in datalist:
        case = preprocessing(dict(item))
        logits = inferer(torch.as_tensor(case["image"])[None].float().to(device), network)
        probs.append(activation(logits.float()).cpu())
        labels.append(torch.as_tensor(case["label"])[None].float())
    rows = []
    for threshold in values:
        counts = torch.cat([compute_localization_counts(p, y, threshold, tolerance, min_distance)
                            for p, y in zip(probs, labels)])
        metrics = localization_metrics_from_counts(counts)
        rows.append({"threshold": threshold, **{k: float(metrics[k].mean()) for k in ("f1", "precision", "recall")}})
    best = max(rows, key=lambda r: (r["f1"], -r["threshold"]))
    logger.info(f"threshold sweep over {len(datalist)} lines: best threshold {best['threshold']} "
                f"(mean F1 {best['f1']:.4f} at tolerance {tolerance}).")
    if output_dir is not None:
        write_table(Path(output_dir) / "threshold_sweep.csv", rows)
    if threshold_file is not None:
        path = Path(threshold_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"threshold": best["threshold"], "tolerance": tolerance, "f1": best["f1"],
                                   "num_lines": len(datalist)}, indent=2))
        os.replace(tmp, path)
    return {"best_threshold": best["threshold"], "best_f1": best["f1"], "rows": rows}


def read_threshold(threshold_file: PathLike, default: float) -> float:
    """The tuned threshold stored by :func:`sweep_localization_threshold`, or ``default`` when the file is absent.

    Raises:
        ValueError: the file exists but holds no finite ``"threshold"``.
    """
    path = Path(threshold_file)
    if not path.is_file():
        return float(default)
    try:
        value = float(json.loads(path.read_text())["threshold"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{str(path)!r} does not hold a tuned threshold ({type(e).__name__}: {e}).") from e
    if not np.isfinite(value):
        raise ValueError(f"{str(path)!r} holds a non-finite threshold {value}.")
    return value
