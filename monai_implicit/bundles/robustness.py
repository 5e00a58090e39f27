"""Segmentation accuracy under image noise: Dice vs noise level, CSV and PNG (Hyper-Convolution paper Fig. 6).

The paper trains on clean images and tests on images corrupted by Gaussian, salt-and-pepper and speckle noise of
increasing strength (seeds/000 Sec. 4.4): hyper-convolutions, whose kernels are smooth functions of the
coordinates, degrade more gracefully than plain convolutions.  :func:`noise_robustness` runs that sweep for one
trained network; running it again for the plain twin with another ``tag`` adds a second curve to the same plot.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch
from monai.data import decollate_batch
from monai.metrics import DiceMetric
from monai.transforms import AsDiscrete, Randomizable

__all__ = ["noise_robustness", "plot_robustness", "read_robustness_tables"]

logger = logging.getLogger(__name__)


def _pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, or None (with a warning) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: robustness CSV written, no plot.")
        return None
    return plt


def read_robustness_tables(output_dir: str | os.PathLike) -> dict[str, list[dict]]:
    """The rows of every ``robustness_<tag>.csv`` in ``output_dir``, keyed by ``<tag>`` (sorted by file name)."""
    tables: dict[str, list[dict]] = {}
    for path in sorted(Path(output_dir).glob("robustness_*.csv")):
        with open(path) as f:
            tables[path.stem[len("robustness_"):]] = list(csv.DictReader(f))
    return tables


def _seed(transform: Any, seed: int) -> Any:
    if isinstance(transform, Randomizable):
        transform.set_random_state(seed)
    return transform


@torch.no_grad()
def noise_robustness(
    network: torch.nn.Module,
    datalist: Sequence[dict],
    preprocessing: Callable[[dict], dict],
    inferer: Callable,
    noise_transforms: Mapping[str, Callable[[float], Callable[[dict], dict]]],
    noise_levels: Mapping[str, Sequence[float]],
    output_dir: str,
    tag: str,
    class_names: Sequence[str],
    device: Optional[torch.device] = None,
    seed: int = 0,
) -> list[dict]:
    """Dice per class of ``network`` on ``datalist`` for every noise kind and level; writes CSV and PNG.

    Args:
        network: the trained network (set to eval mode).
        datalist: ``[{"image": ..., "label": ...}, ...]``.
        preprocessing: deterministic transforms producing ``image (1, *S)`` in the network's intensity range and
            ``label (1, *S)``; noise is added after it (in the normalised intensity range, as in the paper).
        inferer: e.g. a ``SlidingWindowInferer``; called as ``inferer(image (1, 1, *S), network)``.
        noise_transforms: ``kind -> (level -> dictionary transform on "image")``.
        noise_levels: ``kind -> levels``; level 0 should be included as the clean reference.
        output_dir: where ``robustness_<tag>.csv`` and ``robustness.png`` go.
        tag: name of this network in the CSV and the plot legend (e.g. ``"HyperUNet"``, ``"PlainUNet"``).
        class_names: names of the classes, background first (Dice is reported for the others).
        device: where the network runs (default: where its parameters are).
        seed: noise seed; the same for every network so curves are paired.

    Returns:
        One row per (kind, level, case): ``network, noise, level, case, dice_<class>..., mean_dice``.
    """
    missing = set(noise_levels) - set(noise_transforms)
    if missing:
        raise ValueError(f"noise_levels names {sorted(missing)} without a transform in noise_transforms.")
    if len(class_names) < 2:
        raise ValueError(f"class_names needs the background and at least one class, got {list(class_names)}.")
    device = device or next(network.parameters()).device
    network.eval()
    n_classes = len(class_names)
    to_onehot = AsDiscrete(to_onehot=n_classes)
    argmax = AsDiscrete(argmax=True, to_onehot=n_classes)
    cases = [preprocessing(dict(item)) for item in datalist]
    rows: list[dict] = []
    for kind, levels in noise_levels.items():
        for level in levels:
            for index, case in enumerate(cases):
                noisy = _seed(noise_transforms[kind](float(level)), seed + index)(dict(case)) if level else case
                logits = inferer(noisy["image"].unsqueeze(0).to(device), network)
                pred = [argmax(p) for p in decollate_batch(logits.cpu())]
                label = [to_onehot(case["label"])]
                dice = DiceMetric(include_background=False, ignore_empty=False)(pred, label)[0]
                name = getattr(case["image"], "meta", {}).get("filename_or_obj", str(index))
                row = {"network": tag, "noise": kind, "level": float(level), "case": os.path.basename(str(name))}
                row.update({f"dice_{c}": float(d) for c, d in zip(class_names[1:], dice)})
                row["mean_dice"] = float(dice.mean())
                rows.append(row)
            logger.info(f"{tag} {kind} {level}: mean Dice {np.mean([r['mean_dice'] for r in rows[-len(cases):]]):.4f}")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"robustness_{tag}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot_robustness(output_dir)
    return rows


def plot_robustness(output_dir: str, filename: str = "robustness.png") -> Optional[str]:
    """Plot mean Dice vs noise level, one panel per noise kind, one curve per ``robustness_<tag>.csv`` found.

    Returns the PNG path, or None when matplotlib is not installed (the CSVs are still written).
    """
    plt = _pyplot()
    if plt is None:
        return None
    tables = read_robustness_tables(output_dir)
    kinds = list(dict.fromkeys(r["noise"] for rows in tables.values() for r in rows))
    if not kinds:
        return None
    fig, axes = plt.subplots(1, len(kinds), figsize=(4 * len(kinds), 3.5), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for tag, rows in tables.items():
            levels = sorted({float(r["level"]) for r in rows if r["noise"] == kind})
            means = [np.mean([float(r["mean_dice"]) for r in rows if r["noise"] == kind and float(r["level"]) == lv])
                     for lv in levels]
            ax.plot(levels, means, marker="o", label=tag)
        ax.set_title(kind)
        ax.set_xlabel("noise level")
        ax.set_ylabel("mean Dice (foreground classes)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = str(Path(output_dir) / filename)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

