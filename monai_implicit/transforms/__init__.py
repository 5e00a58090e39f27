"""monai_implicit.transforms."""
