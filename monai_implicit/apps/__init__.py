"""monai_implicit.apps."""
