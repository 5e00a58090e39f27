"""monai_implicit.losses."""
from .aliasing import alias_free_penalty
