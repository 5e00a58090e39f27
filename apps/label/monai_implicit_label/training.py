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
from types import MappingProxyType
from typing import Any, Callable, Optional, Union

from monai.config import PathLike

from monai_implicit_label.bundles import SegmentationBundle

__all__ = [
    "ALLOWED_OVERRIDES",
    "OverrideError",
    "OverrideRule",
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

_EPOCH_FILE = re.compile(r"^checkpoint_epoch=(\d+)\.pt$")  # exact name: not backup_of_checkpoint_epoch=9.pt
_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


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


class OverrideError(ValueError):
    """A train request's ``overrides`` names an id clients may not set, or gives it a value of the wrong type or
    outside its bounds.  ``key`` is the offending id (the MONAI Label app answers HTTP 422 with the message)."""

    def __init__(self, key: Any, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class OverrideRule:
    """The values a client may give one ``train.json`` id: a number of ``kind`` within bounds, or a switch.

    Attributes:
        kind: ``int``, ``float`` or ``bool``.  A bool is never accepted as a number nor a number as a bool; an
            integer is accepted for a ``float`` id (JSON has one number type) and passed on as a float.
        low, high: inclusive bounds; None leaves that side open.  Floats must also be finite.
        low_exclusive: the value must be strictly greater than ``low`` (a learning rate of 0 trains nothing).
    """

    kind: type
    low: Optional[float] = None
    high: Optional[float] = None
    low_exclusive: bool = False

    def __post_init__(self) -> None:
        if self.kind not in (int, float, bool):
            raise TypeError(f"OverrideRule.kind must be int, float or bool, got {self.kind!r}.")

    def describe(self) -> str:
        """E.g. ``"an integer in [0, 64]"`` (used in error messages)."""
        if self.kind is bool:
            return "a boolean (true/false)"
        low = "-inf" if self.low is None else repr(self.low)
        high = "inf" if self.high is None else repr(self.high)
        opening = "(" if self.low_exclusive or self.low is None else "["
        closing = ")" if self.high is None else "]"
        return f"{'an integer' if self.kind is int else 'a number'} in {opening}{low}, {high}{closing}"

    def check(self, key: str, value: Any) -> Union[bool, int, float]:
        """``value`` as ``kind``; raise :class:`OverrideError` naming ``key`` when it is not acceptable."""
        if self.kind is bool:
            if isinstance(value, bool):
                return value
            raise OverrideError(key, f"override {key!r} must be {self.describe()}, got {value!r}.")
        # bool is a subclass of int: True must not pass for 1
        numeric = isinstance(value, int) if self.kind is int else isinstance(value, (int, float))
        if isinstance(value, bool) or not numeric or (isinstance(value, float) and not math.isfinite(value)):
            raise OverrideError(key, f"override {key!r} must be {self.describe()}, got {value!r}.")
        too_low = self.low is not None and (value <= self.low if self.low_exclusive else value < self.low)
        too_high = self.high is not None and value > self.high
        if too_low or too_high:
            raise OverrideError(key, f"override {key!r} must be {self.describe()}, got {value!r}.")
        return self.kind(value)


#: The ``train.json`` ids a train request may override, with their types and bounds: the numbers and switches of
#: the bundles' training recipes that are safe to tune from an annotation client.  Everything else (components,
#: nested ids, paths, expressions, strings) is refused; an id must also exist in the served bundle's train.json.
ALLOWED_OVERRIDES: Mapping[str, OverrideRule] = MappingProxyType(
    {
        "learning_rate": OverrideRule(float, 0.0, 1.0, low_exclusive=True),
        "weight_decay": OverrideRule(float, 0.0, 1.0),
        "batch_size": OverrideRule(int, 1, 512),
        "val_batch_size": OverrideRule(int, 1, 512),
        "num_samples": OverrideRule(int, 1, 64),
        "num_workers": OverrideRule(int, 0, 64),
        "cache_rate": OverrideRule(float, 0.0, 1.0),
        "sw_batch_size": OverrideRule(int, 1, 512),
        "sw_overlap": OverrideRule(float, 0.0, 0.9),  # an overlap of 1 never advances the window
        "seed": OverrideRule(int, 0, 2**32 - 1),  # numpy's seed range (monai.utils.set_determinism)
        "amp": OverrideRule(bool),
    }
)

#: ids the train task sets from a request option of its own (an override would be overwritten or bypass a check)
_SET_BY_OPTION = MappingProxyType(
    {"epochs": "max_epochs", "val_interval": "val_interval", "val_fraction": "val_split", "resume": "resume",
     "device": "device", "dataset_dir": "dataset"}
)


def check_overrides(overrides: Optional[Mapping[str, Any]], train_config: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the ``overrides`` of a train request (config id -> value) against :data:`ALLOWED_OVERRIDES`.

    A request comes over HTTP and its overrides are merged over ``train.json``, so any id a client can reach is
    code it can run (``<component>#_target_``, ``$`` expressions) or a file it can redirect (``ckpt_dir``,
    ``dataset_dir``, ``bundle_root``).  Only the allow-listed top-level ids are accepted, each with a plain number
    or boolean within its bounds, and only when the bundle's ``train.json`` defines the id.

    Args:
        overrides: config id -> value, or None.
        train_config: the bundle's parsed ``train.json``.

    Returns:
        the checked overrides (floats as float).

    Raises:
        OverrideError (a ValueError) naming the offending id; TypeError when ``overrides`` is not a mapping.
    """
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise TypeError(f"overrides must be an object (config id -> value), got {type(overrides).__name__}.")
    checked: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in _SET_BY_OPTION:
            raise OverrideError(
                key, f"override {key!r} is set by the train request option {_SET_BY_OPTION[key]!r}; use that instead."
            )
        rule = ALLOWED_OVERRIDES.get(key) if isinstance(key, str) else None
        if rule is None:
            raise OverrideError(
                key,
                f"override {key!r} is not accepted: a train request may override only {sorted(ALLOWED_OVERRIDES)} "
                "(plain numbers and switches within bounds); components, nested ids, paths and expressions are "
                "refused.",
            )
        if key not in train_config:
            raise OverrideError(key, f"override {key!r} is not a config id of the bundle's train.json.")
        checked[key] = rule.check(key, value)
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
        overrides: allow-listed config ids -> numbers or switches (see :func:`check_overrides`), e.g.
            ``{"num_workers": 0}``.
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
