"""Evaluation helpers: baselines that a trained network must beat."""

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

__all__ = [
    "threshold_largest_component",
    "L1_WAVELET_ITERATIONS",
    "L1_WAVELET_LAMDA",
    "L1WaveletReconstruction",
    "L1WaveletReconstructiond",
    "L1WaveletReconstructionD",
    "L1WaveletReconstructionDict",
    "l1_wavelet_reconstruction",
]
