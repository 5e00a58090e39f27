"""Evaluation helpers: baselines that a trained network must beat."""

from .baselines import threshold_largest_component

__all__ = ["threshold_largest_component"]
