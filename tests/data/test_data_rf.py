"""Simulated RF lines with micro-bubble positions."""

import json

import numpy as np
import pytest
from monai.data import load_decathlon_datalist
from monai.transforms import LoadImaged
from scipy.signal import hilbert

from monai_implicit.data.rf import make_rf_dataset, simulate_rf_line


def test_line_has_echoes_at_targets_and_requested_snr():
    rng = np.random.default_rng(1)
    clean, target = simulate_rf_line(rng, length=2048, n_bubbles=5, snr_db=None, min_separation=200)
    positions = np.flatnonzero(target)
    assert len(positions) == 5 and target.dtype == np.float32
    envelope = np.abs(hilbert(clean))
    for p in positions:  # the echo envelope peaks at the bubble's sample
        window = slice(max(p - 60, 0), p + 61)
        assert abs(int(np.argmax(envelope[window])) + window.start - p) <= 1
    rng = np.random.default_rng(1)
    noisy, _ = simulate_rf_line(rng, length=2048, n_bubbles=5, snr_db=10.0, min_separation=200)
    noise = noisy - clean
    measured = 10 * np.log10(np.mean(clean**2) / np.mean(noise**2))
    assert measured == pytest.approx(10.0, abs=0.5)


def test_dataset_layout_readable_by_monai(tmp_path):
    path = make_rf_dataset(tmp_path / "rf", num_lines=6, num_validation=2, length=256, seed=3)
    meta = json.loads(path.read_text())
    assert meta["numTraining"] == 4 and len(meta["validation"]) == 2
    items = load_decathlon_datalist(str(path), data_list_key="training", base_dir=str(tmp_path / "rf"))
    sample = LoadImaged(["image", "label"], image_only=True)(items[0])
    assert tuple(sample["image"].shape) == (1, 256) and set(np.unique(sample["label"])) <= {0.0, 1.0}
    with pytest.raises(FileExistsError):
        make_rf_dataset(tmp_path / "rf", num_lines=6, num_validation=2)
    again = make_rf_dataset(tmp_path / "rf2", num_lines=6, num_validation=2, length=256, seed=3)
    # same seed -> same lines
    assert np.array_equal(np.load(tmp_path / "rf" / "signalsTr/rf_0000.npy"),
                          np.load(again.parent / "signalsTr/rf_0000.npy"))


def test_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="fit"):
        simulate_rf_line(rng, length=16, n_bubbles=20)
    with pytest.raises(ValueError, match="n_bubbles"):
        simulate_rf_line(rng, n_bubbles=(5, 2))
    with pytest.raises(ValueError, match="num_validation"):
        make_rf_dataset("/tmp/unused_rf", num_lines=4, num_validation=4)
