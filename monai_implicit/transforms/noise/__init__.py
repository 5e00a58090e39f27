"""monai_implicit.transforms.noise."""
