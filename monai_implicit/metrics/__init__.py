"""monai_implicit.metrics."""
