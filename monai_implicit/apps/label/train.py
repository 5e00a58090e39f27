"""MONAI Label train task that runs a bundle's own ``configs/train.json`` on the datastore's labelled images.

See :mod:`monai_implicit.apps.label.training` for how the run is built.  The task reads the request options that
3D Slicer / OHIF show (the ``config()`` below), writes the datastore's final labels as the training datalist and
runs the bundle in a child process; a failed run raises, so MONAI Label reports the task as ``ERROR``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Optional

import torch
from monai.data import partition_dataset
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.utils.others.generic import device_list, name_to_device, strtobool

from monai_implicit.apps.label.bundles import SegmentationBundle
from monai_implicit.apps.label.training import checkpoint_epoch, plan_training, run_training, write_datalist

__all__ = ["BundleTrain"]

logger = logging.getLogger(__name__)


def _as_bool(value: Any, name: str) -> bool:
    try:
        return bool(strtobool(value))
    except (ValueError, AttributeError):
        raise ValueError(f"{name} must be a boolean, got {value!r}.") from None


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer, got {value!r}.") from None


class BundleTrain(TrainTask):
    """Train (fine-tune) a bundle from MONAI Label with the bundle's own training config.

    Request options (all optional; defaults in ``config()``):
        ``max_epochs``: epochs to train in this run (continuing the numbering when resuming);
        ``dataset``: ``"datastore"`` (the studies' images with ``labels/final``) or ``"bundle"`` (the bundle's
        own ``dataset_dir``);
        ``val_split``: validation share, ``-1`` for the bundle's; ``val_interval``: ``0`` for automatic (validate
        at the end of the run); ``resume``: continue from ``checkpoint_epoch=N.pt``; ``pretrained``: start from
        ``models/model.pt`` when not resuming; ``device``, ``multi_gpu``, ``gpus`` (``"all"`` or ``"0,1"``);
        ``overrides``: other ``train.json`` ids -> plain JSON values, e.g. ``{"num_workers": 0}``.

    Args:
        bundle: a bundle with ``configs/train.json``.
        default_epochs: ``max_epochs`` shown to clients.
    """

    def __init__(self, bundle: SegmentationBundle, default_epochs: int = 10) -> None:
        if not isinstance(bundle, SegmentationBundle):
            raise TypeError(f"bundle must be a SegmentationBundle, got {type(bundle).__name__}.")
        if bundle.train_config is None:
            raise FileNotFoundError(f"bundle {bundle.name!r} has no configs/train.json.")
        super().__init__(f"Train {bundle.name} with its configs/train.json: {bundle.description}")
        self.bundle = bundle
        self.default_epochs = default_epochs

    def config(self) -> dict[str, Any]:
        return {
            "max_epochs": self.default_epochs,
            "dataset": ["datastore", "bundle"],
            "val_split": -1.0,
            "val_interval": 0,
            "resume": True,
            "pretrained": True,
            "device": device_list(),
            "multi_gpu": True,
            "gpus": "all",
            "overrides": {},
        }

    def stats(self) -> dict[str, Any]:
        checkpoint = self.bundle.checkpoint
        stats: dict[str, Any] = {"epoch": checkpoint_epoch(self.bundle.root / "models")}
        if checkpoint.is_file():
            stats["checkpoint"] = str(checkpoint)
            stats["modified_time"] = checkpoint.stat().st_mtime
        return stats

    def _datalist(self, datastore: Datastore, val_split: Optional[float]) -> list[dict[str, str]]:
        items = [{"image": d["image"], "label": d["label"]} for d in datastore.datalist() if d]
        if val_split is None:  # the bundle's own split, as the bundle will apply it
            bundle_fraction = json.loads(self.bundle.train_config.read_text()).get("val_fraction", 0.2)
            fraction = bundle_fraction if isinstance(bundle_fraction, (int, float)) else 0.2
        else:
            fraction = val_split
        split = partition_dataset(items, ratios=[1.0 - fraction, fraction], shuffle=False) if items else [[], []]
        if len(split[0]) < 1 or len(split[1]) < 1:
            raise ValueError(
                f"training {self.bundle.name!r} needs at least one training and one validation image with a final "
                f"label; the datastore has {len(items)} labelled image(s) (val_split {fraction})."
            )
        return items

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any]:
        logger.info(f"train request for {self.bundle.name}: {request}")
        options = {**self.config(), **request}
        max_epochs = _as_int(options["max_epochs"], "max_epochs")
        dataset = options["dataset"][0] if isinstance(options["dataset"], list) else options["dataset"]
        if dataset not in ("datastore", "bundle"):
            raise ValueError(f"dataset must be 'datastore' or 'bundle', got {dataset!r}.")
        val_split = float(options["val_split"])
        val_split_arg = None if val_split < 0 else val_split
        val_interval = _as_int(options["val_interval"], "val_interval")

        device = name_to_device(options["device"])
        gpus: list[int] = []
        if _as_bool(options["multi_gpu"], "multi_gpu") and str(device).startswith("cuda"):
            spec = str(options["gpus"] or "all")
            gpus = list(range(torch.cuda.device_count())) if spec == "all" else [int(g) for g in spec.split(",")]
            gpus = gpus if len(gpus) > 1 and self.bundle.multi_gpu_config is not None else []

        dataset_dir = None
        if dataset == "datastore":
            datalist = self._datalist(datastore, val_split_arg)
            dataset_dir = write_datalist(datalist, self.bundle.root / "data" / "monailabel").parent

        plan = plan_training(
            self.bundle,
            max_epochs=max_epochs,
            dataset_dir=dataset_dir,
            val_fraction=val_split_arg,
            val_interval=val_interval or None,
            resume=_as_bool(options["resume"], "resume"),
            pretrained=_as_bool(options["pretrained"], "pretrained"),
            device=None if gpus else str(device),
            gpus=gpus,
            overrides=options.get("overrides") or None,
        )
        logger.info(f"training {self.bundle.name}: epochs {plan.first_epoch}..{plan.final_epoch}; {plan.command}")
        before = self.bundle.checkpoint.stat().st_mtime if self.bundle.checkpoint.is_file() else None
        begin = time.time()
        seconds = run_training(plan, on_line=lambda line: print(line, flush=True), cwd=self.bundle.root)
        after = self.bundle.checkpoint.stat().st_mtime if self.bundle.checkpoint.is_file() else None
        return {
            "model": self.bundle.name,
            "epochs": [plan.first_epoch, plan.final_epoch],
            "multi_gpu": plan.multi_gpu,
            "checkpoint": str(self.bundle.checkpoint),
            "checkpoint_updated": after is not None and after != before and after >= begin,
            "seconds": seconds,
        }
