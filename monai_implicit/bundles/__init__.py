"""monai_implicit.bundles."""
