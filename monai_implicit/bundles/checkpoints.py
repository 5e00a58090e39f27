"""Checkpoints that survive interruptions: atomic saving and resuming from the last checkpoint.

* :class:`AtomicCheckpointSaver` is MONAI's ``CheckpointSaver`` writing through ignite's ``DiskSaver(atomic=True)``
  (MONAI uses ``atomic=False``): a checkpoint is written to a temporary file in the same folder and renamed when
  complete, so a crash or a full disk never leaves a truncated ``*.pt`` that looks like a checkpoint.  With
  ``engine_key`` it also stores the engine it is attached to (epoch, iteration), which a config cannot reference
  from inside the engine's own handler list without a cycle.
* :class:`ResumeFromCheckpoint` looks for the newest ``checkpoint_epoch=N.pt`` when attached and, if there is one,
  loads model, optimizer, scheduler and engine state through MONAI's ``CheckpointLoader``: re-running the same
  training command continues from epoch ``N`` instead of starting over.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Optional, Union

from ignite.engine import Engine
from ignite.handlers import DiskSaver
from monai.handlers import CheckpointLoader, CheckpointSaver

__all__ = ["AtomicCheckpointSaver", "ResumeFromCheckpoint", "latest_checkpoint"]

logger = logging.getLogger(__name__)

_EPOCH_FILE = re.compile(r"checkpoint_epoch=(\d+)\.pt$")


class _AtomicDiskSaver(DiskSaver):
    """``DiskSaver(atomic=True)`` with MONAI's optional fixed file name."""

    def __init__(self, dirname: str, filename: Optional[str] = None) -> None:
        super().__init__(dirname=dirname, require_empty=False, atomic=True)
        self.filename = filename

    def __call__(self, checkpoint: Any, filename: str, metadata: Any = None) -> None:
        super().__call__(checkpoint, self.filename or filename, metadata)

    def remove(self, filename: str) -> None:
        super().remove(self.filename or filename)


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI ``CheckpointSaver`` with atomic writes and, optionally, the attached engine in the checkpoint.

    Args:
        save_dir, save_dict, and every keyword of ``monai.handlers.CheckpointSaver``.
        engine_key: when set (e.g. ``"trainer"``), ``save_dict[engine_key]`` is the engine this handler is attached
            to, so that :class:`ResumeFromCheckpoint` can restore the epoch and iteration.
    """

    def __init__(self, save_dir: str, save_dict: dict, engine_key: Optional[str] = None, **kwargs: Any) -> None:
        save_dict = dict(save_dict)  # ignite's Checkpoint keeps a reference: attach() adds the engine to it
        if engine_key is not None and engine_key in save_dict:
            raise ValueError(f"engine_key {engine_key!r} is already a key of save_dict.")
        super().__init__(save_dir=save_dir, save_dict=save_dict, **kwargs)
        self.engine_key = engine_key
        for ckpt in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if ckpt is not None:
                ckpt.save_handler = _AtomicDiskSaver(save_dir, getattr(ckpt.save_handler, "filename", None))

    def attach(self, engine: Engine) -> None:
        if self.engine_key is not None:
            self.save_dict[self.engine_key] = engine
        super().attach(engine)


def latest_checkpoint(ckpt_dir: Union[str, os.PathLike]) -> Optional[str]:
    """The ``*checkpoint_epoch=N.pt`` file of ``ckpt_dir`` with the largest ``N`` (None if there is none).

    Only complete files can match: :class:`AtomicCheckpointSaver` writes under a temporary name first.
    """
    folder = Path(ckpt_dir)
    if not folder.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _EPOCH_FILE.search(p.name)) and p.is_file()]
    return str(max(found)[1]) if found else None


class ResumeFromCheckpoint:
    """Resume training from the newest ``checkpoint_epoch=N.pt`` in ``ckpt_dir`` (no-op when there is none).

    Attach it to the trainer (after the other handlers is fine: loading happens on ``Events.STARTED``).  The
    objects of ``load_dict`` and the engine (under ``engine_key``) are restored with ``monai.handlers.
    CheckpointLoader`` (strict), so ``trainer.state.epoch`` continues from ``N`` and the optimizer and scheduler
    states are those saved.  A finished run (``N == max_epochs``) ends immediately; raising ``max_epochs`` on the
    command line continues it.

    Args:
        ckpt_dir: folder written by an :class:`AtomicCheckpointSaver` with ``save_interval`` and ``engine_key``.
        load_dict: the objects saved alongside the engine (``{"model": net, "optimizer": opt, ...}``).
        engine_key: key of the engine in the checkpoint.
        map_location: passed to ``torch.load`` (e.g. the training device).
        enabled: False disables resuming (start over although checkpoints exist).
    """

    def __init__(
        self,
        ckpt_dir: Union[str, os.PathLike],
        load_dict: dict,
        engine_key: str = "trainer",
        map_location: Any = None,
        enabled: bool = True,
    ) -> None:
        if not load_dict:
            raise ValueError("load_dict must name at least one object to restore.")
        self.ckpt_dir = str(ckpt_dir)
        self.load_dict = dict(load_dict)
        self.engine_key = engine_key
        self.map_location = map_location
        self.enabled = enabled
        self.checkpoint: Optional[str] = None

    def attach(self, engine: Engine) -> None:
        if not self.enabled:
            return
        self.checkpoint = latest_checkpoint(self.ckpt_dir)
        if self.checkpoint is None:
            logger.info(f"no checkpoint_epoch=N.pt in {self.ckpt_dir}: training from scratch.")
            return
        logger.info(f"resuming from {self.checkpoint}.")
        CheckpointLoader(
            load_path=self.checkpoint, load_dict={**self.load_dict, self.engine_key: engine},
            map_location=self.map_location, strict=True,
        ).attach(engine)
