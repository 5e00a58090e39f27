"""Writers of inference outputs: per-line localisation files and output names for per-subject layouts.

* :class:`SaveLocalizationsd` writes, per RF line, the probability line as ``.npy`` and the detected bubble positions
  as CSV (the peaks above the threshold of "Continuous representation of kernels used in convolutional neural
  networks", Jonker, BSc thesis, Sec. 4);
* :func:`path_parts_name_formatter` names ``SaveImaged`` outputs after folders of the input path.
"""

from __future__ import annotations

import csv
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from monai.config import KeysCollection, PathLike
from monai.transforms import MapTransform

from monai_implicit.metrics import find_signal_peaks

__all__ = ["SaveLocalizationsd", "SaveLocalizationsD", "SaveLocalizationsDict", "path_parts_name_formatter"]


class SaveLocalizationsd(MapTransform):
    """Write the probability line and the detected positions of every prediction (dictionary transform).

    For an item whose ``key`` holds scores ``(1, L)`` in [0, 1] (a MetaTensor with ``filename_or_obj`` meta data,
    e.g. ``rf_0003.npy``), writes to ``output_dir``:

    * ``rf_0003_prob.npy``: float32 ``(1, L)``, the scores;
    * ``rf_0003_bubbles.csv``: ``position,score`` rows, the peaks ``>= threshold`` (Jonker thesis, Sec. 4), with
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


def path_parts_name_formatter(start: int = -4, stop: int = -2, sep: str = "_") -> Any:
    """An ``output_name_formatter`` for ``SaveImaged`` naming outputs after folders of the input path.

    Per-subject layouts store every subject's image under the same file name (WMH: ``<site>/<subject>/pre/T1.nii.gz``),
    so MONAI's default formatter (the file name) would make every output overwrite the previous one.  The
    formatter joins ``Path(filename_or_obj).parts[start:stop]`` (``-4:-2`` gives ``<site>_<subject>``).
    """
    def formatter(metadict: dict, saver: Any = None) -> dict:
        source = metadict.get("filename_or_obj", "")
        if isinstance(source, (list, tuple)):
            source = source[0] if source else ""
        parts = Path(str(source)).parts[start:stop]
        if not parts:
            raise ValueError(f"cannot name the output of {source!r}: the path has no parts [{start}:{stop}].")
        return {"subject": sep.join(parts), "idx": metadict.get("patch_index")}

    return formatter
