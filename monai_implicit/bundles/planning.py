"""The configuration of a bundle's training run, derived from the dataset fingerprint once and kept with the weights.

:func:`training_plan` is what a ``train.json`` calls: the first run computes the plan
(:func:`monai_implicit.data.plan_segmentation` of :func:`monai_implicit.data.dataset_fingerprint`) and writes
``plan.json`` next to the checkpoints; a resumed run reads that file back, so resuming on another machine (a CPU
run continued on a GPU) keeps the spacing, intensity window, patch and depth the weights were trained with.
``evaluate.json`` and ``inference.json`` read the same file with :func:`monai_implicit.data.load_plan`.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional, Sequence, Union

import torch
from monai.config import PathLike

from monai_implicit.utils import is_real

__all__ = ["training_plan"]

logger = logging.getLogger(__name__)

_OVERRIDABLE = ("pixdim", "hu_window", "patch_size", "batch_size", "depth")


def _same(a: Any, b: Any) -> bool:
    """Whether an explicit value ``a`` equals the saved ``b`` (a scalar ``a`` stands for every axis of ``b``)."""
    if isinstance(b, (list, tuple)) and is_real(a):
        a = [a] * len(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(b)))
    return a == b


def training_plan(
    datalist_file: PathLike,
    ckpt_dir: PathLike,
    device: Union[str, torch.device] = "cpu",
    resume: bool = True,
    pixdim: Optional[Sequence[float]] = None,
    hu_window: Optional[Sequence[float]] = None,
    patch_size: Optional[Sequence[int]] = None,
    batch_size: Optional[int] = None,
    depth: Optional[int] = None,
) -> dict:
    """The plan of a training run (see the module docstring); explicit arguments override the derived values.

    Args:
        datalist_file: the MSD-style ``dataset.json`` of the training data (fingerprinted and cached next to it).
        ckpt_dir: the checkpoint folder; ``plan.json`` is written (first run) or read (resumed run) there.
        device: the training device (the plan's budget depends on it).
        resume: read an existing ``ckpt_dir/plan.json`` when there is one instead of planning anew.
        pixdim, hu_window, patch_size, batch_size, depth: explicit values (None: derived).

    Raises:
        ValueError: a resumed run is given an explicit value that differs from the plan its checkpoints were trained
            with (start a new run with ``--resume false`` or another ``ckpt_dir`` instead).
    """
    from monai_implicit.data import dataset_fingerprint, load_plan, plan_segmentation

    explicit = {k: v for k, v in zip(_OVERRIDABLE, (pixdim, hu_window, patch_size, batch_size, depth)) if v is not None}
    saved = os.path.join(str(ckpt_dir), "plan.json")
    if resume and os.path.isfile(saved):
        plan = load_plan(ckpt_dir)
        changed = {k: (v, plan.get(k)) for k, v in explicit.items() if not _same(v, plan.get(k))}
        if changed:
            raise ValueError(
                f"resuming from {saved!r}, whose checkpoints were trained with "
                + ", ".join(f"{k}={old!r}" for k, (_, old) in changed.items())
                + "; the run now asks for "
                + ", ".join(f"{k}={new!r}" for k, (new, _) in changed.items())
                + ". Start a new run (--resume false, or another --ckpt_dir) to change them."
            )
        logger.info(f"resumed run: using the plan of {saved}: {plan}")
        return plan
    fingerprint = dataset_fingerprint(datalist_file)
    return plan_segmentation(fingerprint, device, save_dir=ckpt_dir, **explicit)
