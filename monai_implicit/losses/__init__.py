"""monai_implicit.losses."""
