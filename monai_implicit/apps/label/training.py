"""Training a bundle from MONAI Label with the bundle's own ``configs/train.json``.

The train task does not re-implement a training loop: it writes the datastore's labelled images as an MSD-style
``dataset.json``, writes the request's settings as one more config file merged over ``train.json`` (MONAI's
``config_file=[...]`` merge, the mechanism ``multi_gpu_train.json`` uses), and runs::

    python -m monai.bundle run --config_file [train.json, (multi_gpu_train.json,) overrides.json] --meta_file ...

in a child process (``torch.distributed.run`` with one process per GPU for multi-GPU training).  Whatever the
bundle's config does (resuming from ``checkpoint_epoch=N.pt``, atomic checkpoints, validation and best-model
selection into ``models/model.pt``, multi-GPU) therefore happens exactly as on the command line.

Nothing here imports MONAI Label.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

from monai_implicit.apps.label.bundles import SegmentationBundle

__all__ = [
    "TrainKeys",
    "TrainPlan",
    "TrainingFailed",
    "check_overrides",
    "checkpoint_epoch",
    "plan_training",
    "run_training",
    "validation_interval",
    "write_datalist",
]

PathLike = Union[str, os.PathLike]

_EPOCH_FILE = re.compile(r"checkpoint_epoch=(\d+)\.pt$")
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")
_CONFIG_SYNTAX = ("$", "@", "%")


class TrainingFailed(RuntimeError):
    """The bundle's training process exited with a non-zero status (the message holds its last output lines)."""


@dataclass(frozen=True)
class TrainKeys:
    """Config ids of ``train.json`` that the train task sets (the conventions of this package's bundles).

    ``epochs`` is the trainer's ``max_epochs``; ``dataset_dir`` a folder with a ``dataset.json``;
    ``val_fraction`` the validation share of the datalist; ``resume`` enables resuming from the newest
    ``checkpoint_epoch=N.pt`` in ``models/``; ``train_handlers`` the trainer's handler list.
    """

    epochs: str = "epochs"
    dataset_dir: str = "dataset_dir"
    val_interval: str = "val_interval"
    val_fraction: str = "val_fraction"
    resume: str = "resume"
    device: str = "device"
    amp: str = "amp"
    network: str = "network"
    train_handlers: str = "train#handlers"


@dataclass
class TrainPlan:
    """What :func:`run_training` executes.

    Attributes:
        command: the child process command line.
        env: its environment.
        overrides: the config merged over ``train.json`` (written to ``overrides_file``).
        first_epoch, final_epoch: the epochs this run trains (1-based, inclusive).
        multi_gpu: one process per GPU through ``torch.distributed.run``.
    """

    command: list[str]
    env: dict[str, str]
    overrides: dict[str, Any]
    overrides_file: Path
    first_epoch: int
    final_epoch: int
    multi_gpu: bool = False
    configs: list[str] = field(default_factory=list)


def checkpoint_epoch(ckpt_dir: PathLike) -> int:
    """The largest ``N`` of the ``checkpoint_epoch=N.pt`` files in ``ckpt_dir`` (0 when there is none).

    These are the files the bundles' ``AtomicCheckpointSaver`` writes and ``ResumeFromCheckpoint`` resumes from.
    """
    folder = Path(ckpt_dir)
    if not folder.is_dir():
        return 0
    epochs = [int(m.group(1)) for p in folder.iterdir() if (m := _EPOCH_FILE.search(p.name)) and p.is_file()]
    return max(epochs, default=0)


def validation_interval(final_epoch: int, bundle_interval: int) -> int:
    """The largest divisor of ``final_epoch`` that is at most ``bundle_interval``.

    Validation (and with it the best-model ``models/model.pt``) then runs at least as often as the bundle asks
    and always at the last epoch of the run, so a short annotation-loop training updates the served model.
    """
    for name, value in (("final_epoch", final_epoch), ("bundle_interval", bundle_interval)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return max(d for d in range(1, min(final_epoch, bundle_interval) + 1) if final_epoch % d == 0)


def _config_value(config: Mapping[str, Any], key: str) -> Any:
    node: Any = config
    for part in key.split("#"):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(key)
    return node


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, str):
        if value.startswith(_CONFIG_SYNTAX):
            raise ValueError(
                f"{where}: config expressions and references ({', '.join(_CONFIG_SYNTAX)}) are not accepted from "
                f"a request, got {value!r}."
            )
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str) or k.startswith("_"):
                raise ValueError(f"{where}: keys starting with '_' (e.g. _target_) are not accepted, got {k!r}.")
            _check_plain(v, f"{where}#{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}#{i}")
    elif value is not None and not isinstance(value, (bool, int, float)):
        raise TypeError(f"{where}: expected a JSON value, got {type(value).__name__}.")


def check_overrides(overrides: Optional[Mapping[str, Any]], train_config: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the ``overrides`` of a train request (config id -> plain JSON value) against ``train.json``.

    A request comes over HTTP, so it may only replace existing values by data: ids must exist in the bundle's
    ``train.json``; strings must not be config expressions (``$...`` is Python evaluated by MONAI) or references
    (``@``, ``%``); objects must not instantiate classes (``_target_``).

    Raises:
        TypeError / ValueError naming the offending id.
    """
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise TypeError(f"overrides must be an object (config id -> value), got {type(overrides).__name__}.")
    checked: dict[str, Any] = {}
    for key, value in overrides.items():
        if not isinstance(key, str) or not key or key.startswith(("_", "+")):
            raise ValueError(f"override ids must be config ids of train.json, got {key!r}.")
        try:
            _config_value(train_config, key)
        except KeyError:
            raise ValueError(f"override {key!r} is not a config id of the bundle's train.json.") from None
        _check_plain(value, key)
        checked[key] = value
    return checked


def write_datalist(datalist: Sequence[Mapping[str, Any]], folder: PathLike, name: str = "dataset.json") -> Path:
    """Write ``[{"image": path, "label": path}, ...]`` as an MSD-style ``folder/name`` (``"training"`` list).

    Paths are written absolute, so the bundle reads them wherever it runs.

    Raises:
        ValueError: an entry misses ``image`` or ``label``; FileNotFoundError: a file does not exist.
    """
    training = []
    for i, item in enumerate(datalist):
        entry = {}
        for key in ("image", "label"):
            if not item.get(key):
                raise ValueError(f"datalist entry {i} has no {key!r}: {dict(item)}.")
            path = Path(item[key]).expanduser().resolve()
            if not path.exists():
                raise FileNotFoundError(f"datalist entry {i}: {key} {str(path)!r} does not exist.")
            entry[key] = str(path)
        training.append(entry)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"name": "monailabel-datastore", "numTraining": len(training), "training": training},
                              indent=2))
    os.replace(tmp, path)  # a concurrent reader never sees a half-written datalist
    return path


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return value


def plan_training(
    bundle: SegmentationBundle,
    *,
    max_epochs: int,
    dataset_dir: Optional[PathLike] = None,
    val_fraction: Optional[float] = None,
    val_interval: Optional[int] = None,
    resume: Optional[bool] = None,
    pretrained: bool = True,
    device: Optional[str] = None,
    gpus: Optional[Sequence[int]] = None,
    overrides: Optional[Mapping[str, Any]] = None,
    work_dir: Optional[PathLike] = None,
    keys: TrainKeys = TrainKeys(),
) -> TrainPlan:
    """Build the command that trains ``bundle`` with its own ``train.json`` for ``max_epochs`` more epochs.

    Args:
        bundle: a bundle with ``configs/train.json``.
        max_epochs: epochs to train in this run.  With resuming, the run continues from the newest
            ``checkpoint_epoch=N.pt`` and the bundle's ``epochs`` becomes ``N + max_epochs``.
        dataset_dir: folder with a ``dataset.json`` (see :func:`write_datalist`); None keeps the bundle's own.
        val_fraction: validation share of the datalist; None keeps the bundle's.
        val_interval: validate every so many epochs; None: :func:`validation_interval` of the final epoch and the
            bundle's interval (validation, hence ``model.pt``, at the end of the run).
        resume: resume from ``checkpoint_epoch=N.pt``; None keeps the bundle's setting.
        pretrained: when not resuming from a checkpoint, start from ``models/model.pt`` if it exists.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` for a single-process run; None keeps the bundle's.
        gpus: GPU indices; two or more run ``torch.distributed.run`` with ``multi_gpu_train.json``.
        overrides: further config ids -> plain values (see :func:`check_overrides`), e.g. ``{"num_workers": 0}``.
        work_dir: where the overrides file is written (default ``<bundle>/data/monailabel``).
        keys: the config ids used for the settings above.

    Raises:
        ValueError / TypeError for bad arguments, FileNotFoundError when the bundle cannot be trained.
    """
    if bundle.train_config is None:
        raise FileNotFoundError(f"bundle {bundle.name!r} has no configs/train.json; it cannot be trained.")
    max_epochs = _positive_int(max_epochs, "max_epochs")
    train_config = json.loads(bundle.train_config.read_text())
    for required in (keys.epochs, keys.dataset_dir):
        if required not in train_config:
            raise ValueError(f"bundle {bundle.name!r}: train.json has no {required!r}; the train task needs it.")
    config: dict[str, Any] = check_overrides(overrides, train_config)

    bundle_resume = train_config.get(keys.resume, False)
    resume = bool(bundle_resume) if resume is None else resume
    if not isinstance(resume, bool):
        raise TypeError(f"resume must be a bool, got {resume!r}.")
    start = checkpoint_epoch(bundle.root / "models") if resume else 0
    final_epoch = start + max_epochs
    config[keys.epochs] = final_epoch
    if keys.resume in train_config:
        config[keys.resume] = resume
    elif resume and start:
        raise ValueError(f"bundle {bundle.name!r}: train.json has no {keys.resume!r} switch; cannot resume.")

    if dataset_dir is not None:
        datalist = Path(dataset_dir).expanduser().resolve() / "dataset.json"
        if not datalist.is_file():
            raise FileNotFoundError(f"dataset_dir {str(datalist.parent)!r} has no dataset.json.")
        config[keys.dataset_dir] = str(datalist.parent)
    if val_fraction is not None:
        if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}.")
        if keys.val_fraction not in train_config:
            raise ValueError(f"bundle {bundle.name!r}: train.json has no {keys.val_fraction!r}.")
        config[keys.val_fraction] = float(val_fraction)
    if keys.val_interval in train_config:
        if val_interval is None:
            bundle_interval = train_config[keys.val_interval]
            bundle_interval = bundle_interval if isinstance(bundle_interval, int) and bundle_interval > 0 else 1
            val_interval = validation_interval(final_epoch, bundle_interval)
        config[keys.val_interval] = _positive_int(val_interval, "val_interval")
    elif val_interval is not None:
        raise ValueError(f"bundle {bundle.name!r}: train.json has no {keys.val_interval!r}.")

    if pretrained and start == 0 and bundle.checkpoint.is_file():
        # the same handler MONAI Label's own bundle trainer inserts: initial weights from the served model
        config["+" + keys.train_handlers] = [
            {
                "_target_": "CheckpointLoader",
                "load_path": str(bundle.checkpoint),
                "load_dict": {"model": f"@{keys.network}"},
                "map_location": "cpu",
            }
        ]

    gpus = list(gpus) if gpus is not None else []
    if any(isinstance(g, bool) or not isinstance(g, int) or g < 0 for g in gpus):
        raise ValueError(f"gpus must be non-negative GPU indices, got {gpus!r}.")
    multi_gpu = len(gpus) > 1
    if multi_gpu and bundle.multi_gpu_config is None:
        raise FileNotFoundError(f"bundle {bundle.name!r} has no configs/multi_gpu_train.json for {len(gpus)} GPUs.")
    if device is not None and not multi_gpu:
        if not isinstance(device, str) or not _DEVICE.match(device):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}.")
        config[keys.device] = f"$torch.device('{device}')"
        if device == "cpu" and keys.amp in train_config:
            config[keys.amp] = False

    folder = Path(work_dir) if work_dir is not None else bundle.root / "data" / "monailabel"
    folder.mkdir(parents=True, exist_ok=True)
    overrides_file = folder / "train_overrides.json"
    overrides_file.write_text(json.dumps(config, indent=2))

    configs = [str(bundle.train_config)]
    if multi_gpu:
        configs.append(str(bundle.multi_gpu_config))
    configs.append(str(overrides_file))
    args = ["-m", "monai.bundle", "run", "--config_file", json.dumps(configs), "--meta_file", str(bundle.metadata_file)]
    if bundle.logging_config is not None:
        args += ["--logging_file", str(bundle.logging_config)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if multi_gpu:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus)
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
                   f"--nproc_per_node={len(gpus)}", *args]
    else:
        command = [sys.executable, *args]
    return TrainPlan(command, env, config, overrides_file, start + 1, final_epoch, multi_gpu, configs)


def run_training(plan: TrainPlan, on_line: Callable[[str], None] = print, cwd: Optional[PathLike] = None) -> float:
    """Run ``plan.command``, passing each output line to ``on_line``; return the wall time in seconds.

    Raises:
        TrainingFailed: non-zero exit status (the message ends with the last 30 output lines).
    """
    import time

    begin = time.monotonic()
    tail: deque[str] = deque(maxlen=30)
    with subprocess.Popen(
        plan.command, env=plan.env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            tail.append(line)
            on_line(line)
        returncode = process.wait()
    if returncode != 0:
        raise TrainingFailed(f"training exited with status {returncode}:\n" + "\n".join(tail))
    return math.floor((time.monotonic() - begin) * 100) / 100
