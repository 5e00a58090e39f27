"""monai_implicit.data."""
