"""Evaluation: baselines that a trained network must beat, and the study drivers of the papers (noise sweeps,
threshold tuning) with their CSV / PNG writers (:mod:`monai_implicit.evaluation.reports`)."""

from .baselines import threshold_largest_component
from .compressed_sensing import (
    L1_WAVELET_ITERATIONS,
    L1_WAVELET_LAMDA,
    L1WaveletReconstruction,
    L1WaveletReconstructionD,
    L1WaveletReconstructiond,
    L1WaveletReconstructionDict,
    l1_wavelet_reconstruction,
)
from .localization import read_threshold, sweep_localization_threshold
from .reports import pyplot, read_tables, save_figure, write_table
from .robustness import (
    ZERO_FILLED_TAG,
    kspace_noise_robustness,
    noise_robustness,
    plot_psnr_robustness,
    plot_robustness,
)

__all__ = [
    "threshold_largest_component",
    "L1_WAVELET_ITERATIONS",
    "L1_WAVELET_LAMDA",
    "L1WaveletReconstruction",
    "L1WaveletReconstructiond",
    "L1WaveletReconstructionD",
    "L1WaveletReconstructionDict",
    "l1_wavelet_reconstruction",
    "read_threshold",
    "sweep_localization_threshold",
    "pyplot",
    "read_tables",
    "save_figure",
    "write_table",
    "ZERO_FILLED_TAG",
    "kspace_noise_robustness",
    "noise_robustness",
    "plot_psnr_robustness",
    "plot_robustness",
]
