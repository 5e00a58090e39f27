"""MONAI Label train task that runs a bundle's own ``configs/train.json`` on the datastore's labelled images.

See :mod:`monai_implicit_label.training` for how the run is built.  The task reads the request options that
3D Slicer / OHIF show (the ``config()`` below), writes the datastore's final labels as the training datalist and
runs the bundle in a child process; a failed run raises, so MONAI Label reports the task as ``ERROR``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Optional

import torch
from monai.data import partition_dataset
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.utils.others.generic import device_list, device_map, name_to_device, strtobool

from monai_implicit_label.bundles import SegmentationBundle
from monai_implicit_label.training import (
    OverrideError,
    check_overrides,
    checkpoint_epoch,
    plan_training,
    run_training,
    write_datalist,
)

__all__ = ["MAX_EPOCHS", "BundleTrain", "TrainOptions", "TrainRequestError"]

logger = logging.getLogger(__name__)


#: upper bound of ``max_epochs`` and ``val_interval`` in one request: a guard against runaway jobs, not a recipe
MAX_EPOCHS = 10_000
_GPUS = re.compile(r"^(all|\d+(,\d+)*)$")
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


class TrainRequestError(ValueError):
    """A train request option (or override) is not acceptable; ``option`` names it (the app answers HTTP 422)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


def _as_bool(value: Any, name: str) -> bool:
    try:
        return bool(strtobool(value))
    except (ValueError, AttributeError, TypeError):
        raise TrainRequestError(name, f"train option {name!r} must be a boolean, got {value!r}.") from None


def _as_int(value: Any, name: str, low: int, high: int) -> int:
    # clients send numbers, some as strings ("3"); floats with a fraction or bools are not integers
    if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
        number = None
    else:
        try:
            number = int(value)
        except (TypeError, ValueError, OverflowError):
            number = None
    if number is None or not low <= number <= high:
        raise TrainRequestError(name, f"train option {name!r} must be an integer in [{low}, {high}], got {value!r}.")
    return number


@dataclass(frozen=True)
class TrainOptions:
    """The checked options of one train request (see :class:`BundleTrain`).

    ``val_split`` None keeps the bundle's validation share; ``val_interval`` None validates at the end of the run;
    ``gpus`` is ``"all"`` or comma-separated GPU indices; ``overrides`` passed :func:`check_overrides`.
    """

    max_epochs: int
    dataset: str
    val_split: Optional[float]
    val_interval: Optional[int]
    resume: bool
    pretrained: bool
    device: str
    multi_gpu: bool
    gpus: str
    overrides: dict[str, Any]


class BundleTrain(TrainTask):
    """Train (fine-tune) a bundle from MONAI Label with the bundle's own training config.

    Request options (all optional; defaults in ``config()``):
        ``max_epochs``: epochs to train in this run (continuing the numbering when resuming);
        ``dataset``: ``"datastore"`` (the studies' images with ``labels/final``) or ``"bundle"`` (the bundle's
        own ``dataset_dir``);
        ``val_split``: validation share, ``-1`` for the bundle's; ``val_interval``: ``0`` for automatic (validate
        at the end of the run); ``resume``: continue from ``checkpoint_epoch=N.pt``; ``pretrained``: start from
        ``models/model.pt`` when not resuming; ``device``, ``multi_gpu``, ``gpus`` (``"all"`` or ``"0,1"``);
        ``overrides``: allow-listed ``train.json`` ids -> numbers or switches within bounds (see
        :data:`~monai_implicit_label.training.ALLOWED_OVERRIDES`), e.g. ``{"num_workers": 0}``.

    :meth:`check_request` validates every option without side effects: the app calls it synchronously, before
    MONAI Label starts the background task (a refusal is an HTTP 422 naming the option), and the task calls it
    again in the training process.

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

    def training_datalist(self, datastore: Datastore, val_split: Optional[float]) -> list[dict[str, str]]:
        """The datastore's labelled images as ``[{"image": path, "label": path}, ...]``.

        Raises:
            ValueError: fewer than one training and one validation image after the split (read only, no side effect).
        """
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

    def check_request(self, request: dict[str, Any]) -> TrainOptions:
        """Validate a train request without side effects; the MONAI Label app calls this before starting a task.

        Args:
            request: the request options merged over :meth:`config` (unknown keys, e.g. MONAI Label's own
                ``model`` or ``local_rank``, are ignored).

        Raises:
            TrainRequestError (a ValueError) naming the option; overrides are checked by :func:`check_overrides`.
        """
        if not isinstance(request, dict):
            raise TypeError(f"a train request must be an object, got {type(request).__name__}.")
        options = {**self.config(), **request}
        max_epochs = _as_int(options["max_epochs"], "max_epochs", 1, MAX_EPOCHS)
        dataset = options["dataset"]
        dataset = dataset[0] if isinstance(dataset, list) and dataset else dataset  # the choice list: its default
        if dataset not in ("datastore", "bundle"):
            raise TrainRequestError(
                "dataset", f"train option 'dataset' must be 'datastore' or 'bundle', got {dataset!r}."
            )
        try:
            val_split = math.nan if isinstance(options["val_split"], bool) else float(options["val_split"])
        except (TypeError, ValueError):
            val_split = math.nan
        if not (val_split == -1 or 0 < val_split < 1):  # nan fails both
            raise TrainRequestError(
                "val_split",
                f"train option 'val_split' must be -1 (the bundle's) or in (0, 1), got {options['val_split']!r}.",
            )
        val_interval = _as_int(options["val_interval"], "val_interval", 0, MAX_EPOCHS)
        device_option = options["device"]
        names = device_option if isinstance(device_option, list) else [device_option]
        # MONAI Label takes the first name: a torch device or a GPU name it lists (device_list)
        if not names or not isinstance(names[0], str) or not (_DEVICE.match(names[0]) or names[0] in device_map()):
            raise TrainRequestError(
                "device",
                f"train option 'device' must be 'cpu', 'cuda', 'cuda:N' or a listed GPU, got {device_option!r}.",
            )
        device = str(name_to_device(names[0]))
        index = device.partition(":")[2]
        if not _DEVICE.match(device) or index and int(index) >= torch.cuda.device_count():
            raise TrainRequestError(
                "device",
                f"train option 'device' must be 'cpu', 'cuda', 'cuda:N' or a listed GPU, got {device_option!r}.",
            )
        # MONAI Label copies gpus into CUDA_VISIBLE_DEVICES of the training process
        gpus = str(options["gpus"] or "all").replace(" ", "")
        if not _GPUS.match(gpus):
            raise TrainRequestError(
                "gpus", f"train option 'gpus' must be 'all' or GPU indices like '0,1', got {options['gpus']!r}."
            )
        overrides = options.get("overrides") or None
        try:
            checked = check_overrides(overrides, json.loads(self.bundle.train_config.read_text()))
        except OverrideError as e:
            raise TrainRequestError(f"overrides#{e.key}", str(e)) from None
        except TypeError as e:
            raise TrainRequestError("overrides", str(e)) from None
        return TrainOptions(
            max_epochs=max_epochs,
            dataset=dataset,
            val_split=None if val_split < 0 else val_split,
            val_interval=val_interval or None,
            resume=_as_bool(options["resume"], "resume"),
            pretrained=_as_bool(options["pretrained"], "pretrained"),
            device=device,
            multi_gpu=_as_bool(options["multi_gpu"], "multi_gpu"),
            gpus=gpus,
            overrides=checked,
        )

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any]:
        logger.info(f"train request for {self.bundle.name}: {request}")
        options = self.check_request(request)
        gpus: list[int] = []
        if options.multi_gpu and options.device.startswith("cuda"):
            spec = options.gpus
            gpus = list(range(torch.cuda.device_count())) if spec == "all" else [int(g) for g in spec.split(",")]
            gpus = gpus if len(gpus) > 1 and self.bundle.multi_gpu_config is not None else []

        dataset_dir = None
        if options.dataset == "datastore":
            datalist = self.training_datalist(datastore, options.val_split)
            dataset_dir = write_datalist(datalist, self.bundle.root / "data" / "monailabel").parent

        plan = plan_training(
            self.bundle,
            max_epochs=options.max_epochs,
            dataset_dir=dataset_dir,
            val_fraction=options.val_split,
            val_interval=options.val_interval,
            resume=options.resume,
            pretrained=options.pretrained,
            device=None if gpus else options.device,
            gpus=gpus,
            overrides=options.overrides,
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
