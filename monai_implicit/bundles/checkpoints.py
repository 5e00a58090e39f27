"""Checkpoint handlers of the bundles; they live in :mod:`monai_implicit.handlers.checkpoints`.

Kept so that ``monai_implicit.bundles.AtomicCheckpointSaver``, ``ResumeFromCheckpoint`` and ``latest_checkpoint``
(used by existing bundle configs and scripts) keep working.
"""

from monai_implicit.handlers.checkpoints import (
    AtomicCheckpointSaver,
    BestMetricState,
    CheckpointLoader,
    CheckpointReadError,
    ResumeFromCheckpoint,
    RNGState,
    epoch_checkpoints,
    latest_checkpoint,
    read_checkpoint,
)

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
