"""Ignite handlers that are not metrics (metric handlers live next to their metrics in monai_implicit.metrics)."""

from .njet import NJetSigmaLogger
