"""Accuracy under noise: the robustness studies of "Hyper-Convolutions via Implicit Kernels for Medical Imaging".

* Segmentation under image noise (Sec. 4.4, Fig. 6): the paper trains on clean images and tests on images corrupted
  by Gaussian, salt-and-pepper and speckle noise of increasing strength: hyper-convolutions, whose kernels are smooth
  functions of the coordinates, degrade more gracefully than plain convolutions.  :func:`noise_robustness` runs that
  sweep (Dice per class) for one trained network; running it again for the plain twin with another ``tag`` adds a
  second curve to the same plot (:func:`plot_robustness`).
* Reconstruction under k-space noise (Sec. 4.4, Fig. 8): the paper trains a reconstruction network on noise-free
  undersampled data and tests it on inputs whose *acquired* k-space samples carry complex Gaussian noise of
  increasing strength: the noisy k-space is zero-filled again and fed to the network (with data consistency, the
  noisy samples are also what the network's output keeps).  :func:`kspace_noise_robustness` runs that sweep (PSNR,
  SSIM) for one trained network and, alongside, scores the zero-filled input itself (:func:`plot_psnr_robustness`).

Both write ``robustness_<tag>.csv`` and ``robustness.png`` with :mod:`monai_implicit.evaluation.reports`.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from monai.config import PathLike
from monai.data import decollate_batch
from monai.metrics import DiceMetric, PSNRMetric, SSIMMetric
from monai.transforms import AsDiscrete, Randomizable

from monai_implicit.evaluation.reports import pyplot, read_tables, save_figure, write_table
from monai_implicit.transforms import KspaceGaussianNoised
from monai_implicit.utils import is_real

__all__ = ["noise_robustness", "plot_robustness", "kspace_noise_robustness", "plot_psnr_robustness", "ZERO_FILLED_TAG"]

logger = logging.getLogger(__name__)


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
    output_dir: PathLike,
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
    write_table(Path(output_dir) / f"robustness_{tag}.csv", rows)
    plot_robustness(output_dir)
    return rows


def plot_robustness(output_dir: PathLike, filename: str = "robustness.png") -> Optional[str]:
    """Plot mean Dice vs noise level, one panel per noise kind, one curve per ``robustness_<tag>.csv`` found.

    Returns the PNG path, or None when matplotlib is not installed (the CSVs are still written).
    """
    plt = pyplot()
    if plt is None:
        return None
    tables = read_tables(output_dir)
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
    return save_figure(fig, output_dir, filename)


#: tag of the zero-filled input's curve
ZERO_FILLED_TAG = "zero_filled"


def _level(value: Any) -> float:
    """``None`` / ``"clean"`` / ``inf`` mean no noise (SNR = inf dB)."""
    if value is None or (isinstance(value, str) and value.lower() in ("clean", "none", "inf")):
        return math.inf
    if not is_real(value) or math.isnan(value):
        raise ValueError(f"an SNR level must be a number in dB or None (no noise), got {value!r}.")
    return float(value)


@torch.no_grad()
def kspace_noise_robustness(
    network: torch.nn.Module,
    datalist: Sequence[dict],
    preprocessing: Callable[[dict], dict],
    inferer: Callable,
    snr_levels: Sequence[Optional[float]],
    output_dir: PathLike,
    tag: str,
    data_range: float = 1.0,
    device: Optional[Union[str, torch.device]] = None,
    seed: int = 0,
    image_key: str = "image",
    target_key: str = "label",
    kspace_key: str = "kspace",
    mask_key: str = "mask",
    extra_inputs: Optional[Mapping[str, str]] = None,
) -> list[dict]:
    """PSNR and SSIM of ``network`` and of the zero-filled input at every k-space SNR level; writes CSVs and a PNG.

    Args:
        network: the trained reconstruction network ``(1, 1, H, W) -> (1, 1, H, W)`` (set to eval mode).
        datalist: ``[{"image": path}, ...]``.
        preprocessing: deterministic transforms ending with
            :class:`~monai_implicit.transforms.RetrospectiveUndersampled`, so that each case holds the zero-filled
            input ``image_key``, the fully sampled ``target_key``, the undersampled complex ``kspace_key`` and the
            sampling ``mask_key``.
        inferer: called as ``inferer(image (1, 1, H, W), network)``.
        snr_levels: SNR of the added noise in dB relative to the mean power of the acquired samples
            (:class:`~monai_implicit.transforms.KspaceGaussianNoised` with ``sampled_only=True``); None = no noise.
        output_dir: where ``robustness_<tag>.csv``, ``robustness_zero_filled.csv`` and ``robustness.png`` go.
        tag: name of the network in the CSV and the plot (e.g. ``"HyperUNet"``, ``"PlainUNet"``).
        data_range: intensity range of the target for PSNR / SSIM (1 for images scaled to [0, 1]).
        device: where the network runs (default: where its parameters are).
        seed: noise seed of case ``i`` is ``seed + i``, the same for every network, so curves are paired.
        image_key, target_key, kspace_key, mask_key: keys written by the preprocessing.
        extra_inputs: keyword arguments of the network's forward taken from the case (argument name -> key), as
            ``monai.engines.PrepareBatchExtraInput`` takes them from a batch: ``{"kspace": "kspace", "mask": "mask"}``
            for a :class:`~monai_implicit.networks.nets.DataConsistency` network, which then keeps the *noisy*
            acquired samples (what was measured).  None for a network of the image alone.

    Returns:
        One row per (level, case) for the network: ``network, snr_db, case, psnr, ssim``.
    """
    if not isinstance(tag, str) or not tag or tag == ZERO_FILLED_TAG or os.sep in tag:
        raise ValueError(f"tag must be a non-empty file-name-safe string other than {ZERO_FILLED_TAG!r}, got {tag!r}.")
    levels = [_level(v) for v in snr_levels]
    if not levels:
        raise ValueError("snr_levels is empty.")
    if not datalist:
        raise ValueError("datalist is empty.")
    device = torch.device(device) if device is not None else next(network.parameters()).device
    network = network.to(device).eval()
    psnr = PSNRMetric(max_val=data_range, reduction="none")
    cases = [preprocessing(dict(item)) for item in datalist]
    for key in (image_key, target_key, kspace_key, mask_key, *(extra_inputs or {}).values()):
        if key not in cases[0]:
            raise KeyError(f"the preprocessing must produce {key!r} (RetrospectiveUndersampled), got {list(cases[0])}.")
    spatial_dims = cases[0][target_key].ndim - 1
    ssim = SSIMMetric(spatial_dims=spatial_dims, data_range=data_range, reduction="none")
    rows: dict[str, list[dict]] = {tag: [], ZERO_FILLED_TAG: []}
    for level in levels:
        for index, case in enumerate(cases):
            if math.isfinite(level):
                noise = KspaceGaussianNoised(kspace_key, snr_db=level, sampled_only=True, mask_key=mask_key,
                                             recon_key=image_key)
                noise.set_random_state(seed + index)
                case = noise(dict(case))
            target = torch.as_tensor(case[target_key]).float()[None]
            zero_filled = torch.as_tensor(case[image_key]).float()[None]
            kwargs = {arg: torch.as_tensor(case[key])[None].to(device) for arg, key in (extra_inputs or {}).items()}
            pred = inferer(zero_filled.to(device), network, **kwargs).float().cpu()
            name = os.path.basename(str(getattr(cases[index][target_key], "meta", {}).get("filename_or_obj", index)))
            for who, image in ((tag, pred), (ZERO_FILLED_TAG, zero_filled)):
                rows[who].append({"network": who, "snr_db": level, "case": name,
                                  "psnr": float(psnr(image, target).flatten()[0]),
                                  "ssim": float(ssim(image, target).flatten()[0])})
        for who in rows:
            recent = [r["psnr"] for r in rows[who][-len(cases):]]
            logger.info(f"{who} at SNR {level} dB: mean PSNR {np.mean(recent):.2f} dB")
    for who, table in rows.items():
        write_table(Path(output_dir) / f"robustness_{who}.csv", table)
    plot_psnr_robustness(output_dir)
    return rows[tag]


def plot_psnr_robustness(output_dir: PathLike, filename: str = "robustness.png") -> Optional[str]:
    """Mean PSNR vs k-space SNR, one curve per ``robustness_<tag>.csv`` in ``output_dir`` (paper Fig. 8).

    The noise-free level (SNR = inf) is drawn at the left end, labelled "clean"; noise grows to the right.
    Returns the PNG path, or None when matplotlib is missing or there is nothing to plot.
    """
    plt = pyplot()
    if plt is None:
        return None
    tables = read_tables(output_dir)
    levels = sorted({float(r["snr_db"]) for rows in tables.values() for r in rows}, reverse=True)
    if not levels:
        return None
    finite = [lv for lv in levels if math.isfinite(lv)]
    step = (max(finite) - min(finite)) / max(len(finite) - 1, 1) if len(finite) > 1 else 10.0
    position = {lv: (max(finite) + step if finite else 0.0) if not math.isfinite(lv) else lv for lv in levels}
    fig, ax = plt.subplots(figsize=(5, 3.8))
    for tag, rows in tables.items():
        present = [lv for lv in levels if any(float(r["snr_db"]) == lv for r in rows)]
        means = [np.mean([float(r["psnr"]) for r in rows if float(r["snr_db"]) == lv]) for lv in present]
        ax.plot([position[lv] for lv in present], means, marker="o", label=tag.replace("_", "-"),
                linestyle="--" if tag == ZERO_FILLED_TAG else "-")
    ax.set_xticks([position[lv] for lv in levels])
    ax.set_xticklabels(["clean" if not math.isfinite(lv) else f"{lv:g}" for lv in levels])
    ax.invert_xaxis()
    ax.set_xlabel("k-space SNR of the acquired samples (dB)")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, output_dir, filename)
