"""Synthetic datasets written in the layouts real datasets use (MSD / LiTS / WMH), and layout converters."""

from .lits import LITS_LABELS, lits_datalist, make_lits_like_case, make_lits_like_dataset
