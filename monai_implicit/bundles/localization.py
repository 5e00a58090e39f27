"""Bundle helpers for 1D localisation (RF micro-bubble detection, seeds/004 Sec. 4): threshold tuning and outputs.

The thesis scores a localisation network by the F1 of the peaks of its output above a threshold ``phi_th`` within a
tolerance ``t_tol`` of the true bubbles, and tunes ``phi_th`` on the training data (seeds/004 Sec. 4, Fig. 11).

* :func:`sweep_localization_threshold` runs the trained network once per line and scores every candidate
  threshold from the same outputs (CSV + the chosen threshold as JSON next to the model);
* :func:`read_threshold` reads that JSON back (inference uses the tuned threshold when there is one);
* :class:`SaveLocalizationsd` writes, per line, the probability line as ``.npy`` and the detected positions as CSV.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from monai_implicit.metrics.localization import (
    compute_localization_counts,
    find_signal_peaks,
    localization_metrics_from_counts,
)

__all__ = ["sweep_localization_threshold", "read_threshold", "SaveLocalizationsd", "SaveLocalizationsD",
           "SaveLocalizationsDict"]

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]


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
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        with open(Path(output_dir) / "threshold_sweep.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
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


class SaveLocalizationsd(MapTransform):
    """Write the probability line and the detected positions of every prediction (dictionary transform).

    For an item whose ``key`` holds scores ``(1, L)`` in [0, 1] (a MetaTensor with ``filename_or_obj`` meta data,
    e.g. ``rf_0003.npy``), writes to ``output_dir``:

    * ``rf_0003_prob.npy``: float32 ``(1, L)``, the scores;
    * ``rf_0003_bubbles.csv``: ``position,score`` rows, the peaks ``>= threshold`` (seeds/004 Sec. 4), with
      positions in samples from the start of the line.

    Args:
        keys: the prediction key(s).
        output_dir: destination folder (created).
        threshold: minimum peak height ``phi_th``.
        min_distance: optional minimum separation of peaks in samples.
        save_probabilities: also write the ``_prob.npy`` file.
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: PathLike,
        threshold: float = 0.5,
        min_distance: Optional[int] = None,
        save_probabilities: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if not np.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number, got {threshold!r}.")
        self.output_dir = Path(output_dir)
        self.threshold = float(threshold)
        self.min_distance = min_distance
        self.save_probabilities = save_probabilities

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            pred = d[key]
            scores = np.asarray(pred.detach().cpu() if isinstance(pred, torch.Tensor) else pred, dtype=np.float32)
            if scores.ndim != 2 or scores.shape[0] != 1:
                raise ValueError(f"{key} must be a single-channel line (1, L), got shape {tuple(scores.shape)}.")
            name = getattr(pred, "meta", {}).get("filename_or_obj", None)
            if not name:
                raise ValueError(f"{key} has no 'filename_or_obj' meta data to name the output files after.")
            stem = Path(str(name)).name
            for suffix in (".gz", ".npy", ".nii", ".npz"):
                stem = stem[: -len(suffix)] if stem.endswith(suffix) else stem
            self.output_dir.mkdir(parents=True, exist_ok=True)
            if self.save_probabilities:
                np.save(self.output_dir / f"{stem}_prob.npy", scores)
            peaks = find_signal_peaks(scores[0], self.threshold, self.min_distance)
            with open(self.output_dir / f"{stem}_bubbles.csv", "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["position", "score"])
                writer.writerows([int(p), f"{scores[0, p]:.6f}"] for p in peaks)
        return d


SaveLocalizationsD = SaveLocalizationsDict = SaveLocalizationsd
