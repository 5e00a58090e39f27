"""Bundle helpers for CS-MRI reconstruction: PSNR under complex k-space noise, CSV and PNG (seeds/000 Sec. 4.4, Fig. 8).

The hyper-convolution paper trains a reconstruction network on noise-free undersampled data and tests it on inputs
whose *acquired* k-space samples carry complex Gaussian noise of increasing strength: the noisy k-space is
zero-filled again and fed to the network.  :func:`kspace_noise_robustness` runs that sweep for one trained network
and, alongside, scores the zero-filled input itself; running it again for the plain-convolution twin with another
``tag`` adds its curve to the same plot (:func:`plot_psnr_robustness`).

:class:`ResidualReconstruction` wraps any image-to-image network as ``x + gain * net(x)`` with ``gain`` starting at 0:
the reconstruction starts as the zero-filled input and training only has to learn the artefact, not the identity
(residual learning, standard in CS-MRI networks), which matters on a short CPU schedule.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
from monai.metrics import PSNRMetric, SSIMMetric

from monai_implicit.bundles.robustness import _pyplot, read_robustness_tables
from monai_implicit.transforms.kspace.dictionary import KspaceGaussianNoised

__all__ = ["ResidualReconstruction", "kspace_noise_robustness", "plot_psnr_robustness", "ZERO_FILLED_TAG"]

logger = logging.getLogger(__name__)

#: tag of the zero-filled input's curve
ZERO_FILLED_TAG = "zero_filled"


class ResidualReconstruction(torch.nn.Module):
    """``y = x + gain * network(x)`` with a learnable scalar ``gain`` initialised to ``init_gain`` (0 by default).

    With ``gain = 0`` the initial output is exactly the zero-filled input, so the untrained model already scores the
    zero-filled PSNR and every optimizer step that lowers the MSE improves on it (zero-initialised residual branch,
    as in SkipInit / ReZero).  The wrapped network (e.g. a HyperUNet or its PlainUNet twin) is unchanged, so
    :func:`monai_implicit.networks.utils.bake` and TorchScript export work through the wrapper.

    Args:
        network: an image-to-image network with as many output channels as input channels.
        init_gain: initial value of ``gain``.

    Shapes: ``(B, C, *S) -> (B, C, *S)``.
    """

    def __init__(self, network: torch.nn.Module, init_gain: float = 0.0) -> None:
        super().__init__()
        if not isinstance(network, torch.nn.Module):
            raise TypeError(f"network must be a torch.nn.Module, got {type(network).__name__}.")
        if not math.isfinite(init_gain):
            raise ValueError(f"init_gain must be finite, got {init_gain!r}.")
        self.network = network
        self.gain = torch.nn.Parameter(torch.tensor(float(init_gain)))
        self.spatial_dims: int = int(getattr(network, "spatial_dims", 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.network(x)
        if out.shape != x.shape:
            raise ValueError(f"the residual branch must keep the input shape {list(x.shape)}, got {list(out.shape)}.")
        return x + self.gain * out


def _level(value: Any) -> float:
    """``None`` / ``"clean"`` / ``inf`` mean no noise (SNR = inf dB)."""
    if value is None or (isinstance(value, str) and value.lower() in ("clean", "none", "inf")):
        return math.inf
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"an SNR level must be a number in dB or None (no noise), got {value!r}.")
    return float(value)


@torch.no_grad()
def kspace_noise_robustness(
    network: torch.nn.Module,
    datalist: Sequence[dict],
    preprocessing: Callable[[dict], dict],
    inferer: Callable,
    snr_levels: Sequence[Optional[float]],
    output_dir: Union[str, os.PathLike],
    tag: str,
    data_range: float = 1.0,
    device: Optional[Union[str, torch.device]] = None,
    seed: int = 0,
    image_key: str = "image",
    target_key: str = "label",
    kspace_key: str = "kspace",
    mask_key: str = "mask",
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
    for key in (image_key, target_key, kspace_key, mask_key):
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
            pred = inferer(zero_filled.to(device), network).float().cpu()
            name = os.path.basename(str(getattr(cases[index][target_key], "meta", {}).get("filename_or_obj", index)))
            for who, image in ((tag, pred), (ZERO_FILLED_TAG, zero_filled)):
                rows[who].append({"network": who, "snr_db": level, "case": name,
                                  "psnr": float(psnr(image, target).flatten()[0]),
                                  "ssim": float(ssim(image, target).flatten()[0])})
        for who in rows:
            recent = [r["psnr"] for r in rows[who][-len(cases):]]
            logger.info(f"{who} at SNR {level} dB: mean PSNR {np.mean(recent):.2f} dB")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for who, table in rows.items():
        with open(out / f"robustness_{who}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
    plot_psnr_robustness(out)
    return rows[tag]


def plot_psnr_robustness(output_dir: Union[str, os.PathLike], filename: str = "robustness.png") -> Optional[str]:
    """Mean PSNR vs k-space SNR, one curve per ``robustness_<tag>.csv`` in ``output_dir`` (paper Fig. 8).

    The noise-free level (SNR = inf) is drawn at the left end, labelled "clean"; noise grows to the right.
    Returns the PNG path, or None when matplotlib is missing or there is nothing to plot.
    """
    plt = _pyplot()
    if plt is None:
        return None
    tables = read_robustness_tables(output_dir)
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
    fig.tight_layout()
    path = str(Path(output_dir) / filename)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
