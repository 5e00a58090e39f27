"""monai_implicit.networks: networks (nets/) and deployment utilities (utils.py)."""
