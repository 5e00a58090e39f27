"""monai_implicit.transforms.kspace."""
