"""monai_implicit.apps.label."""
