"""Small config helpers shared by the bundles (metric selection, run summaries)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, Callable, Optional, Union

from monai.handlers import from_engine

from monai_implicit.utils import is_integer

__all__ = ["select_channels", "log_training_summary"]

logger = logging.getLogger(__name__)


def select_channels(
    index: Union[int, Sequence[int]], keys: tuple[str, str] = ("pred", "label")
) -> Callable[[Any], tuple[list, list]]:
    """An ignite ``output_transform`` keeping channel ``index`` of the one-hot ``pred`` and ``label`` of every case.

    Used to report a metric for one class (e.g. HD95 and lesion-wise metrics for the tumour channel only): each
    case ``(C, *spatial)`` becomes ``(1, *spatial)``, a binary mask that MONAI's and this package's metrics treat
    as the foreground (use ``include_background=True`` so the single channel is kept).  A sequence of indices
    merges those classes into one mask (their union), e.g. ``[1, 2]`` for the LiTS liver Dice, which counts the
    tumours as liver.
    """
    indices = [index] if is_integer(index) else list(index)
    if not indices or any(not is_integer(i) or i < 0 for i in indices):
        raise ValueError(f"index must be a non-negative channel index or a non-empty sequence of them, got {index!r}.")
    get = from_engine(list(keys))

    def pick(t: Any) -> Any:
        if t.shape[0] <= max(indices):
            raise ValueError(f"select_channels({index}): got a tensor of shape {tuple(t.shape)} (channel first).")
        if len(indices) == 1:
            return t[indices[0] : indices[0] + 1]
        return t[indices].amax(dim=0, keepdim=True)  # union of one-hot channels

    def transform(output: Any) -> tuple[list, list]:
        preds, labels = get(output)
        return [pick(p) for p in preds], [pick(y) for y in labels]

    return transform


def log_training_summary(trainer: Any, evaluator: Optional[Any] = None, ckpt_dir: Optional[str] = None) -> dict:
    """Log where a training run ended: epochs, best validation metric and the checkpoint files; return it as a dict."""
    summary: dict[str, Any] = {"epoch": trainer.state.epoch, "max_epochs": trainer.state.max_epochs}
    if evaluator is not None and getattr(evaluator.state, "best_metric_epoch", -1) >= 0:
        summary["best_metric"] = float(evaluator.state.best_metric)
        summary["best_metric_epoch"] = int(evaluator.state.best_metric_epoch)
        summary["metrics"] = {k: float(v) for k, v in evaluator.state.metrics.items() if _is_number(v)}
    if ckpt_dir is not None and os.path.isdir(ckpt_dir):
        summary["checkpoints"] = sorted(f for f in os.listdir(ckpt_dir) if f.endswith(".pt"))
    logger.info(f"training summary: {summary}")
    return summary


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
