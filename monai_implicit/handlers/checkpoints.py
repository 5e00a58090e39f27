"""Checkpoints that survive interruptions: atomic saving, complete resume state, fallback on a corrupt file.

* :class:`AtomicCheckpointSaver` is MONAI's ``CheckpointSaver`` writing through ignite's ``DiskSaver(atomic=True)``
  (MONAI uses ``atomic=False``): a checkpoint is written to a temporary file in the same folder and renamed when
  complete, so a crash or a full disk never leaves a truncated ``*.pt`` that looks like a checkpoint.  With
  ``engine_key`` it writes a *resume* checkpoint: besides ``save_dict`` it stores the engine it is attached to
  (epoch, iteration), the engine's AMP ``GradScaler`` and the random number generators (:class:`RNGState`), and,
  with ``best_metric_state``, the validation's best metric and best-model file (:class:`BestMetricState`).
* :class:`ResumeFromCheckpoint` loads the newest readable ``checkpoint_epoch=N.pt`` when the trainer starts;
  a truncated or corrupt newest file is reported by name and the previous one is used.
* :class:`CheckpointLoader` is MONAI's loader whose errors name the file; :func:`read_checkpoint` is the same
  for code that calls ``torch.load`` itself.

Without the validation state a resumed run forgets its best metric: ignite's ``Checkpoint`` behind the key-metric
saver starts with an empty list of saved scores, so the first validation after a resume overwrites
``models/model.pt`` even when it is worse, and the evaluator reports that epoch as the best.
"""

from __future__ import annotations

import logging
import pickle
import random
import re
import types
import zipfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver
from monai.config import PathLike
from monai.handlers import CheckpointLoader as _MonaiCheckpointLoader
from monai.handlers import CheckpointSaver
from monai.transforms import Randomizable

__all__ = [
    "AtomicCheckpointSaver",
    "BestMetricState",
    "CheckpointLoader",
    "CheckpointReadError",
    "RNGState",
    "ResumeFromCheckpoint",
    "epoch_checkpoints",
    "latest_checkpoint",
    "read_checkpoint",
]

logger = logging.getLogger(__name__)

#: Exact name of the files an epoch-level ``AtomicCheckpointSaver`` with ``engine_key`` writes (ignite's
#: ``{name}_{score_name}={score}.pt`` with name ``checkpoint`` for several objects): anchored at both ends so that
#: ``backup_of_checkpoint_epoch=9.pt`` or ``checkpoint_epoch=9.pt.tmp`` are never taken for a checkpoint.
CHECKPOINT_EPOCH_FILE = re.compile(r"^checkpoint_epoch=(\d+)\.pt$")

SCALER_KEY = "scaler"
RNG_KEY = "rng"
BEST_METRIC_KEY = "best_metric_state"

# what torch.load raises on a truncated, corrupt or foreign file (zip reader: RuntimeError or OSError "Invalid
# argument" from a seek past the end; unpickler; weights-only filter)
_READ_ERRORS = (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile,
                AttributeError, IndexError, KeyError, TypeError)


class CheckpointReadError(ValueError):
    """A checkpoint file cannot be read (truncated, corrupt, not written by ``torch.save``) or lacks its content."""


def read_checkpoint(path: PathLike, map_location: Any = None) -> Any:
    """``torch.load(path, map_location, weights_only=True)`` whose failures name the file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointReadError: the file exists but is not a complete checkpoint (the message has the reason).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist (expected a file written by torch.save).")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except _READ_ERRORS as err:
        raise CheckpointReadError(
            f"checkpoint {path} ({path.stat().st_size} bytes) cannot be read: expected a complete file written by "
            f"torch.save; it may be truncated or corrupt ({type(err).__name__}: {_one_line(err)})."
        ) from err


def _one_line(err: BaseException, limit: int = 400) -> str:
    """The exception's message on one line (state-dict errors span several), cut at ``limit`` characters."""
    text = " ".join(str(err).split()) or repr(err)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def epoch_checkpoints(ckpt_dir: PathLike) -> list[tuple[int, Path]]:
    """``(N, path)`` of every ``checkpoint_epoch=N.pt`` file of ``ckpt_dir``, oldest first (empty if none)."""
    folder = Path(ckpt_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := CHECKPOINT_EPOCH_FILE.match(p.name))]
    return sorted((n, p) for n, p in found if p.is_file())


def latest_checkpoint(ckpt_dir: PathLike) -> Optional[str]:
    """The ``checkpoint_epoch=N.pt`` file of ``ckpt_dir`` with the largest ``N`` (None if there is none).

    Only complete files can match: :class:`AtomicCheckpointSaver` writes under a temporary name first.  Whether
    the file can be read is checked when resuming (:class:`ResumeFromCheckpoint`).
    """
    found = epoch_checkpoints(ckpt_dir)
    return str(found[-1][1]) if found else None


class _AtomicDiskSaver(DiskSaver):
    """``DiskSaver(atomic=True)`` with MONAI's optional fixed file name.

    With a fixed name (``models/model.pt``) ``remove`` does nothing: ignite removes the previous best file before
    writing the new one, and the atomic write that follows replaces the file anyway; removing it first would leave
    no best model at all if the process died in between.
    """

    def __init__(self, dirname: PathLike, filename: Optional[str] = None) -> None:
        super().__init__(dirname=str(dirname), require_empty=False, atomic=True)
        self.filename = filename

    def __call__(self, checkpoint: Any, filename: str, metadata: Any = None) -> None:
        super().__call__(checkpoint, self.filename or filename, metadata)

    def remove(self, filename: str) -> None:
        if self.filename is None:
            super().remove(filename)


class _EngineScaler:
    """The AMP ``GradScaler`` of an engine as a checkpointable object.

    Looked up at save and load time, not at attach time: MONAI's ``Trainer.run()`` creates a new
    ``engine.scaler`` (``None`` without amp) just before the engine starts.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _scaler(self) -> Any:
        scaler = getattr(self.engine, "scaler", None)
        return scaler if scaler is not None and scaler.is_enabled() else None

    def state_dict(self) -> dict:
        scaler = self._scaler()
        return scaler.state_dict() if scaler is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        scaler = self._scaler()
        if state_dict and scaler is not None:
            scaler.load_state_dict(state_dict)
        elif state_dict:
            logger.info("the checkpoint has a GradScaler state but amp is off in this run: not restored.")
        elif scaler is not None:
            logger.info("the checkpoint was saved without amp: the GradScaler starts from its initial scale.")


# not walked into when looking for random transforms: a transform may hold a module, class or function (whose
# namespace is no part of the data pipeline) or large arrays
_OPAQUE = (types.ModuleType, type, types.FunctionType, types.MethodType, types.BuiltinFunctionType, torch.Tensor,
           np.ndarray, torch.nn.Module)


class RNGState:
    """The random number generators of a training run as a checkpointable object (``state_dict``/``load_state_dict``).

    Covers the global generators that ``monai.utils.set_determinism`` seeds (torch CPU, every CUDA device, numpy,
    Python ``random``) and, when an engine is given, the randomness of its training data: the ``numpy.random.
    RandomState`` of every ``monai.transforms.Randomizable`` reachable from ``data_loader.dataset.transform`` (the
    random transforms of a ``num_workers=0`` loader draw from these in the main process) and the loader's and
    sampler's ``torch.Generator`` if they have one.  Worker processes of a ``num_workers > 0`` loader are re-seeded
    every epoch from the global torch generator, so they are covered by the torch state.

    Restored at the start of a resumed run, the draws of the following epochs equal those of an uninterrupted run
    (for a loader without persistent workers).  In distributed training the checkpoint holds rank 0's states and
    every rank restores them.

    Args:
        engine: the trainer whose data loader (``engine.data_loader``, else ``engine.state.dataloader``) is covered;
            None covers the global generators only.
    """

    def __init__(self, engine: Optional[Engine] = None) -> None:
        self.engine = engine

    def _loader(self) -> Any:
        if self.engine is None:
            return None
        loader = getattr(self.engine, "data_loader", None)
        return loader if loader is not None else getattr(self.engine.state, "dataloader", None)

    def _transform_rngs(self) -> list[np.random.RandomState]:
        dataset = getattr(self._loader(), "dataset", None)
        found: list[np.random.RandomState] = []
        seen: set[int] = set()

        def visit(obj: Any) -> None:  # the walk of monai.data.utils.set_rnd, restricted to the transform chain
            if id(obj) in seen:
                return
            seen.add(id(obj))
            if isinstance(obj, (list, tuple)):
                for item in obj:
                    visit(item)
                return
            if isinstance(obj, Randomizable) and isinstance(getattr(obj, "R", None), np.random.RandomState):
                found.append(obj.R)
            if hasattr(obj, "__dict__") and not isinstance(obj, _OPAQUE):
                for key, value in vars(obj).items():
                    if not key.startswith("__") and key != "R":
                        visit(value)

        visit(getattr(dataset, "transform", None))
        return found

    def _generators(self) -> list[torch.Generator]:
        loader = self._loader()
        candidates = (getattr(loader, "generator", None), getattr(getattr(loader, "sampler", None), "generator", None))
        return [g for g in candidates if isinstance(g, torch.Generator)]

    def state_dict(self) -> dict:
        """Tensors and plain numbers only, so that ``torch.load(weights_only=True)`` reads them back."""
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": _numpy_state(np.random.get_state()),
            "random": _python_state(random.getstate()),
            "transforms": [_numpy_state(r.get_state()) for r in self._transform_rngs()],
            "generators": [g.get_state() for g in self._generators()],
        }
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        # set_rng_state wants CPU byte tensors; the checkpoint may have been mapped to the training device
        torch.set_rng_state(state_dict["torch"].cpu())
        cuda = [s.cpu() for s in state_dict.get("cuda", [])]
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        elif cuda or torch.cuda.is_available():
            logger.warning(f"CUDA random states not restored: the checkpoint has {len(cuda)} device(s), this run "
                           f"{torch.cuda.device_count() if torch.cuda.is_available() else 0}.")
        np.random.set_state(_numpy_tuple(state_dict["numpy"]))
        random.setstate(_python_tuple(state_dict["random"]))
        for name, saved, current in (
            ("random transforms", state_dict.get("transforms", []), self._transform_rngs()),
            ("data loader generators", state_dict.get("generators", []), self._generators()),
        ):
            if len(saved) != len(current):
                logger.warning(f"{name}: the checkpoint has {len(saved)} random states, this run {len(current)}: "
                               "not restored (the data pipeline changed).")
                continue
            for target, value in zip(current, saved):
                if isinstance(target, torch.Generator):
                    target.set_state(value.cpu())
                else:
                    target.set_state(_numpy_tuple(value))


def _numpy_state(state: tuple) -> dict:
    kind, keys, pos, has_gauss, cached = state
    if kind != "MT19937":
        raise TypeError(f"numpy random state: expected an 'MT19937' state, got {kind!r}.")
    return {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached)}


def _numpy_tuple(state: dict) -> tuple:
    keys = state["keys"].cpu().numpy().astype(np.uint32)
    return ("MT19937", keys, state["pos"], state["has_gauss"], state["cached_gaussian"])


def _python_state(state: tuple) -> dict:
    version, internal, gauss_next = state
    return {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64), "gauss_next": gauss_next}


def _python_tuple(state: dict) -> tuple:
    return (state["version"], tuple(int(v) for v in state["internal"].tolist()), state["gauss_next"])


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI ``CheckpointSaver`` with atomic writes and, with ``engine_key``, everything a resume needs.

    Keys of a resume checkpoint (``engine_key`` set) besides those of ``save_dict``: ``engine_key`` (the engine
    this handler is attached to: epoch, iteration; a config cannot reference the engine from inside its own
    handler list without a cycle), ``"scaler"`` (the engine's AMP ``GradScaler``, ``{}`` without amp), ``"rng"``
    (:class:`RNGState` of the engine) and, with ``best_metric_state``, ``"best_metric_state"``.  Attach it after
    the ``ValidationHandler`` so that the epoch's validation is in the checkpoint of that epoch.

    ``state_dict``/``load_state_dict`` are the key-metric saver's list of saved scores (ignite's ``Checkpoint``
    state), which is what decides whether a validation result replaces the best-model file.

    Args:
        save_dir, save_dict, and every keyword of ``monai.handlers.CheckpointSaver``.
        engine_key: when set (e.g. ``"trainer"``), write resume checkpoints as described above.
        best_metric_state: the validation's :class:`BestMetricState`, stored under ``"best_metric_state"``
            (with ``engine_key`` only).
    """

    def __init__(
        self,
        save_dir: PathLike,
        save_dict: dict,
        engine_key: Optional[str] = None,
        best_metric_state: Optional[BestMetricState] = None,
        **kwargs: Any,
    ) -> None:
        save_dict = dict(save_dict)  # ignite's Checkpoint keeps a reference: attach() adds the engine to it
        reserved = [k for k in (engine_key, SCALER_KEY, RNG_KEY, BEST_METRIC_KEY) if k in save_dict]
        if engine_key is not None and reserved:
            raise ValueError(f"save_dict keys {reserved} are reserved for the resume state (engine_key "
                             f"{engine_key!r}); rename them.")
        if best_metric_state is not None:
            if engine_key is None:
                raise ValueError("best_metric_state is stored in resume checkpoints only: set engine_key too.")
            if not isinstance(best_metric_state, BestMetricState):
                raise TypeError(f"best_metric_state must be a BestMetricState, got {type(best_metric_state).__name__}.")
        super().__init__(save_dir=str(save_dir), save_dict=save_dict, **kwargs)
        self.engine_key = engine_key
        self.best_metric_state = best_metric_state
        self._previous_adopted = False
        for ckpt in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if ckpt is not None:
                ckpt.save_handler = _AtomicDiskSaver(save_dir, getattr(ckpt.save_handler, "filename", None))

    def attach(self, engine: Engine) -> None:
        if self.engine_key is not None:
            self.save_dict[self.engine_key] = engine
            self.save_dict[SCALER_KEY] = _EngineScaler(engine)
            self.save_dict[RNG_KEY] = RNGState(engine)
            if self.best_metric_state is not None:
                self.save_dict[BEST_METRIC_KEY] = self.best_metric_state
        super().attach(engine)

    def interval_completed(self, engine: Engine) -> None:
        if not self._previous_adopted:
            self._adopt_previous_files(engine)
            self._previous_adopted = True
        super().interval_completed(engine)

    def _adopt_previous_files(self, engine: Engine) -> None:
        """Take over the interval files an interrupted process left, so that ``n_saved`` holds across resumes.

        ignite only removes files it saved itself; without this every resume would leave its predecessor's last
        ``n_saved`` checkpoints behind for good.  Only files of this saver's name pattern and *before* the
        current epoch (or iteration) are adopted: they are the history of the run being continued.
        """
        ckpt = self._interval_checkpoint
        if ckpt is None or ckpt.n_saved is None or self.engine_key is None:  # resume checkpoints only
            return
        name = "checkpoint" if len(self.save_dict) > 1 else next(iter(self.save_dict))
        prefix = f"{ckpt.filename_prefix}_" if ckpt.filename_prefix else ""
        pattern = re.compile(rf"^{re.escape(prefix + name)}_{re.escape(ckpt.score_name)}=(\d+)\.{ckpt.ext}$")
        now = engine.state.epoch if self.epoch_level else engine.state.iteration
        folder = Path(self.save_dir)
        found = sorted(
            (int(m.group(1)), p.name) for p in folder.iterdir() if (m := pattern.match(p.name)) and p.is_file()
        ) if folder.is_dir() else []
        previous = [(n, f) for n, f in found if n < now]
        while len(previous) > ckpt.n_saved:  # what ignite would have removed had the run not been interrupted
            ckpt.save_handler.remove(previous.pop(0)[1])
        ckpt._saved = sorted(ckpt._saved + [Checkpoint.Item(n, f) for n, f in previous], key=lambda it: it.priority)

    def state_dict(self) -> dict:
        """The key-metric saver's saved ``(score, file name)`` list (the counterpart of ``load_state_dict``)."""
        if self._key_metric_checkpoint is None:
            raise ValueError("state_dict() is the key-metric tracking list: expected a saver created with "
                             "save_key_metric=True, got one without.")
        return {"_saved": [(float(p), str(f)) for p, f in self._key_metric_checkpoint.state_dict()["_saved"]]}


class BestMetricState:
    """The best validation result of a run as a checkpointable object: metric, epoch and best-model file.

    ``state_dict()`` holds the evaluator's ``state.best_metric`` and ``state.best_metric_epoch`` (what MONAI's
    workflow compares every validation with, and what :func:`monai_implicit.bundles.log_training_summary`
    reports) and the key-metric saver's list of saved scores (what decides whether ``models/model.pt`` is
    replaced).  Stored in the trainer's resume checkpoint, both survive a resume: a worse validation after the
    resume leaves ``model.pt`` as it is, a better one replaces it.

    Config::

        "best_model_saver": {"_target_": "monai_implicit.handlers.AtomicCheckpointSaver", "save_dir": "@ckpt_dir",
                             "save_dict": {"model": "@network"}, "save_key_metric": true,
                             "key_metric_filename": "model.pt"},
        "best_metric_state": {"_target_": "monai_implicit.handlers.BestMetricState",
                              "evaluator": "@validate#evaluator", "saver": "@validate#best_model_saver"}

    Args:
        evaluator: the MONAI evaluator (its ``state`` has ``best_metric`` and ``best_metric_epoch``).
        saver: the evaluator's key-metric :class:`AtomicCheckpointSaver`; None: the metric only.
    """

    def __init__(self, evaluator: Engine, saver: Optional[AtomicCheckpointSaver] = None) -> None:
        if not hasattr(getattr(evaluator, "state", None), "best_metric_epoch"):
            raise TypeError(f"evaluator must be a MONAI evaluator (state.best_metric_epoch), got "
                            f"{type(evaluator).__name__}.")
        if saver is not None:
            if not isinstance(saver, AtomicCheckpointSaver):
                raise TypeError(f"saver must be an AtomicCheckpointSaver, got {type(saver).__name__}.")
            if saver._key_metric_checkpoint is None:
                raise ValueError("saver must save the key metric (save_key_metric=True).")
        self.evaluator = evaluator
        self.saver = saver

    def state_dict(self) -> dict:
        state = self.evaluator.state
        out: dict[str, Any] = {
            "best_metric": float(state.best_metric), "best_metric_epoch": int(state.best_metric_epoch),
        }
        if self.saver is not None:
            out["saver"] = self.saver.state_dict()
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        self.evaluator.state.best_metric = float(state_dict["best_metric"])
        self.evaluator.state.best_metric_epoch = int(state_dict["best_metric_epoch"])
        if self.saver is not None and "saver" in state_dict:
            self.saver.load_state_dict(state_dict["saver"])


class ResumeFromCheckpoint:
    """Resume training from the newest readable ``checkpoint_epoch=N.pt`` in ``ckpt_dir`` (no-op when there is none).

    Attach it to the trainer; loading happens on ``Events.STARTED`` (after MONAI's trainer has created its
    ``GradScaler``).  ``load_dict`` and the engine (``engine_key``) are restored strictly, so
    ``trainer.state.epoch`` continues from ``N`` with the saved optimizer and scheduler.  The optional entries an
    :class:`AtomicCheckpointSaver` adds (``"scaler"``, ``"rng"``, ``"best_metric_state"``) are restored when the
    checkpoint has them (a checkpoint from before they existed is resumed with a warning).  A finished run
    (``N == max_epochs``) ends immediately; raising ``max_epochs`` continues it.

    A newest file that cannot be read or lacks a required entry is logged as a warning naming the file and the
    reason, and the previous checkpoint is tried (keep ``n_saved >= 2`` on the saver so that there is one); when
    no file is usable, :class:`CheckpointReadError` names every file and its reason.

    Args:
        ckpt_dir: folder written by an :class:`AtomicCheckpointSaver` with ``save_interval`` and ``engine_key``.
        load_dict: the objects saved alongside the engine (``{"model": net, "optimizer": opt, ...}``).
        engine_key: key of the engine in the checkpoint.
        map_location: passed to ``torch.load`` (e.g. the training device).
        enabled: False disables resuming (start over although checkpoints exist).
        best_metric_state: the validation's :class:`BestMetricState` (the same object the saver stores).

    Attributes:
        checkpoint: the file the run resumed from (None before the start or when training from scratch).
    """

    def __init__(
        self,
        ckpt_dir: PathLike,
        load_dict: dict,
        engine_key: str = "trainer",
        map_location: Any = None,
        enabled: bool = True,
        best_metric_state: Optional[BestMetricState] = None,
    ) -> None:
        if not load_dict:
            raise ValueError("load_dict must name at least one object to restore.")
        reserved = [k for k in (engine_key, SCALER_KEY, RNG_KEY, BEST_METRIC_KEY) if k in load_dict]
        if reserved:
            raise ValueError(f"load_dict keys {reserved} are reserved for the resume state; rename them.")
        if best_metric_state is not None and not isinstance(best_metric_state, BestMetricState):
            raise TypeError(f"best_metric_state must be a BestMetricState, got {type(best_metric_state).__name__}.")
        self.ckpt_dir = str(ckpt_dir)
        self.load_dict = dict(load_dict)
        self.engine_key = engine_key
        self.map_location = map_location
        self.enabled = enabled
        self.best_metric_state = best_metric_state
        self.checkpoint: Optional[str] = None

    def attach(self, engine: Engine) -> None:
        if self.enabled:
            engine.add_event_handler(Events.STARTED, self)
        elif found := epoch_checkpoints(self.ckpt_dir):
            logger.warning(f"resume is off: training from scratch although {self.ckpt_dir} holds "
                           f"{found[-1][1].name}; a later resumed run would continue from the newest such file.")

    def __call__(self, engine: Engine) -> None:
        found = epoch_checkpoints(self.ckpt_dir)
        if not found:
            logger.info(f"no checkpoint_epoch=N.pt in {self.ckpt_dir}: training from scratch.")
            return
        required = [*self.load_dict, self.engine_key]
        failures: list[str] = []
        for _, path in reversed(found):
            try:
                checkpoint = read_checkpoint(path, self.map_location)
                if not isinstance(checkpoint, dict):
                    raise CheckpointReadError(f"checkpoint {path}: expected a dict of states, got "
                                              f"{type(checkpoint).__name__}.")
                missing = [k for k in required if k not in checkpoint]
                if missing:
                    raise CheckpointReadError(f"checkpoint {path}: expected the entries {required}, "
                                              f"{missing} are missing (found {sorted(checkpoint)}).")
            except (CheckpointReadError, FileNotFoundError) as err:  # FileNotFoundError: removed meanwhile
                logger.warning(f"skipping unusable checkpoint {path.name}: {err}")
                failures.append(str(err))
                continue
            if failures:
                logger.warning(f"resuming from the previous checkpoint {path.name} instead.")
            self._restore(engine, checkpoint, path)
            return
        raise CheckpointReadError(
            f"no usable checkpoint in {self.ckpt_dir} to resume from; start over with resume disabled "
            f"(e.g. --resume false) or remove the files. " + " | ".join(failures)
        )

    def _restore(self, engine: Engine, checkpoint: dict, path: Path) -> None:
        prior_max_epochs = engine.state.max_epochs
        to_load = {**self.load_dict, self.engine_key: engine}
        try:
            Checkpoint.load_objects(to_load=to_load, checkpoint=checkpoint, strict=True)
        except (RuntimeError, KeyError, ValueError, TypeError) as err:  # e.g. the network or optimizer changed
            raise CheckpointReadError(f"checkpoint {path} does not fit the objects {sorted(to_load)} of this run: "
                                      f"{_one_line(err)}") from err
        if prior_max_epochs is not None and engine.state.epoch > prior_max_epochs:
            raise ValueError(f"checkpoint {path} is at epoch {engine.state.epoch}, beyond max_epochs "
                             f"{prior_max_epochs} of this run: raise max_epochs (epochs) to continue training.")
        engine.state.max_epochs = prior_max_epochs
        optional: dict[str, Any] = {SCALER_KEY: _EngineScaler(engine), RNG_KEY: RNGState(engine)}
        if self.best_metric_state is not None:
            optional[BEST_METRIC_KEY] = self.best_metric_state
        absent = [k for k in optional if k not in checkpoint]
        if absent:
            logger.warning(f"checkpoint {path.name} has no {absent} (saved by an older version): not restored.")
        present = {k: v for k, v in optional.items() if k in checkpoint}
        if present:
            Checkpoint.load_objects(to_load=present, checkpoint=checkpoint)
        self.checkpoint = str(path)
        logger.info(f"resumed from {path} at epoch {engine.state.epoch}.")


class CheckpointLoader(_MonaiCheckpointLoader):
    """MONAI's ``CheckpointLoader`` whose errors name the checkpoint file.

    A truncated or corrupt ``models/model.pt`` makes ``torch.load`` raise a ``RuntimeError`` about a zip archive
    that does not say which file; a network that does not fit the weights raises one about state-dict keys.  Both
    are re-raised as :class:`CheckpointReadError` with ``load_path`` in the message.  Same arguments as
    ``monai.handlers.CheckpointLoader``.
    """

    def __call__(self, engine: Engine) -> None:
        path = Path(self.load_path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {path} does not exist (expected the trained weights, e.g. "
                                    "models/model.pt written by training).")
        try:
            super().__call__(engine)
        except _READ_ERRORS as err:
            raise CheckpointReadError(
                f"cannot load checkpoint {path} into {sorted(self.load_dict)}: {type(err).__name__}: "
                f"{_one_line(err)}"
            ) from err
