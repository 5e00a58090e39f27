"""Simulated single-channel ultrasound RF lines with micro-bubble positions.

The data model of "Continuous representation of kernels used in convolutional neural networks" (Jonker, BSc
thesis, Sec. 2.3, 3.4).

Each line is the sum of the echoes of a few micro-bubbles at random depths: a Gaussian-modulated sinusoid
(:func:`scipy.signal.gausspulse`) centred on the bubble's sample with a random amplitude and phase polarity, plus
white Gaussian noise at a target SNR.  The target is a binary line with a 1 at every bubble's sample, the
localisation task of Blanken et al. as used in the CKCNN thesis.

On disk the lines use a Decathlon-like layout, channel first, so MONAI's ``LoadImaged`` (NumpyReader) and
``load_decathlon_datalist`` read them like any other dataset::

    out/signalsTr/rf_0000.npy   float32 (1, length)
    out/labelsTr/rf_0000.npy    float32 (1, length), 1 at bubble positions
    out/dataset.json            {"training": [{"image": ..., "label": ...}], "validation": [...], ...}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Union

import numpy as np
from monai.config import PathLike
from scipy.signal import gausspulse

__all__ = ["simulate_rf_line", "make_rf_dataset", "RF_DEFAULTS"]


#: sampling frequency, pulse centre frequency (Hz), fractional bandwidth and line length of the default simulation
RF_DEFAULTS = {"fs": 62.5e6, "fc": 1.7e6, "bw": 0.6, "length": 1024}


def simulate_rf_line(
    rng: np.random.Generator,
    length: int = 1024,
    n_bubbles: Union[int, tuple[int, int]] = (1, 12),
    fs: float = RF_DEFAULTS["fs"],
    fc: float = RF_DEFAULTS["fc"],
    bw: float = RF_DEFAULTS["bw"],
    snr_db: Optional[float] = 20.0,
    min_separation: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """One RF line and its bubble-position target.

    Args:
        rng: the generator to draw from (the global RNG is never used).
        length: samples per line.
        n_bubbles: a fixed count or an inclusive ``(low, high)`` range drawn uniformly.
        fs: sampling frequency in Hz.
        fc: transmit centre frequency in Hz.
        bw: fractional bandwidth of the pulse (scipy.signal.gausspulse).
        snr_db: signal-to-noise ratio of added white noise (signal power over the line); None for no noise.
        min_separation: minimum distance in samples between two bubbles (so one target sample is one bubble).

    Returns:
        ``(signal, target)``, both float32 arrays of shape ``(length,)``; ``target`` is 1 at bubble samples.
    """
    if length < 8:
        raise ValueError(f"length must be at least 8 samples, got {length}.")
    low, high = (n_bubbles, n_bubbles) if isinstance(n_bubbles, int) else n_bubbles
    if low < 0 or high < low:
        raise ValueError(f"n_bubbles must be a non-negative count or a (low, high) range, got {n_bubbles!r}.")
    if high * min_separation > length:
        raise ValueError(f"{high} bubbles at least {min_separation} samples apart do not fit in {length} samples.")
    count = int(rng.integers(low, high + 1))
    positions: list[int] = []
    while len(positions) < count:  # rejection sampling keeps bubbles apart; cheap because lines are sparse
        p = int(rng.integers(0, length))
        if all(abs(p - q) >= min_separation for q in positions):
            positions.append(p)
    t = (np.arange(length)[None, :] - np.asarray(positions, dtype=float)[:, None]) / fs
    amplitudes = rng.lognormal(0.0, 0.5, size=(count, 1)) * rng.choice([-1.0, 1.0], size=(count, 1))
    echoes = amplitudes * gausspulse(t, fc=fc, bw=bw) if count else np.zeros((0, length))
    signal = echoes.sum(axis=0) if count else np.zeros(length)
    if snr_db is not None:
        power = float(np.mean(signal**2)) if count else 1e-4
        signal = signal + rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), size=length)
    target = np.zeros(length, dtype=np.float32)
    target[positions] = 1.0
    return signal.astype(np.float32), target


def make_rf_dataset(
    out_dir: PathLike,
    num_lines: int = 64,
    num_validation: int = 16,
    length: int = 1024,
    n_bubbles: tuple[int, int] = (1, 12),
    snr_db: Optional[float] = 20.0,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write ``num_lines`` simulated RF lines in the layout of the module docstring; returns the datalist path.

    ``num_validation`` of them are listed under ``"validation"`` in ``dataset.json``, the rest under ``"training"``.
    An existing ``dataset.json`` is never overwritten unless ``overwrite`` is set.
    """
    if num_lines < 1 or not 0 <= num_validation < num_lines:
        raise ValueError(f"need num_lines >= 1 and 0 <= num_validation < num_lines, got {num_lines}, {num_validation}.")
    out = Path(out_dir)
    datalist_path = out / "dataset.json"
    if datalist_path.exists() and not overwrite:
        raise FileExistsError(f"{datalist_path} exists; pass overwrite=True to replace the dataset.")
    (out / "signalsTr").mkdir(parents=True, exist_ok=True)
    (out / "labelsTr").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    items = []
    for i in range(num_lines):
        signal, target = simulate_rf_line(rng, length=length, n_bubbles=n_bubbles, snr_db=snr_db)
        image_rel, label_rel = f"signalsTr/rf_{i:04d}.npy", f"labelsTr/rf_{i:04d}.npy"
        np.save(out / image_rel, signal[None])
        np.save(out / label_rel, target[None])
        items.append({"image": image_rel, "label": label_rel})
    datalist = {
        "name": "SyntheticRFLines",
        "description": "simulated single-channel ultrasound RF lines with micro-bubble positions (monai_implicit)",
        "tensorImageSize": "1D",
        "modality": {"0": "RF"},
        "labels": {"0": "background", "1": "bubble"},
        "sampling_frequency_hz": RF_DEFAULTS["fs"],
        "numTraining": num_lines - num_validation,
        "training": items[num_validation:],
        "validation": items[:num_validation],
    }
    tmp = datalist_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(datalist, indent=2))
    os.replace(tmp, datalist_path)  # the datalist appears only once every line is written
    return datalist_path
