"""Ignite handlers that are not metrics (metric handlers live next to their metrics in monai_implicit.metrics)."""

from .checkpoints import (
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
from .njet import NJetSigmaLogger
