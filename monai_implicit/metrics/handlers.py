"""Ignite handlers for the metrics of this package, usable in MONAI bundle configs and with ``MetricsSaver``.

They report the evaluation metrics of "NeRD: Neural Representation of Distribution for Medical Image Segmentation"
(Zhang et al., Sec. 4: LDice, LTPR, LFPR, HD95, ASD) and of the micro-bubble localisation study of "Continuous
representation of kernels used in convolutional neural networks" (Jonker, BSc thesis, Sec. 4: F1 with a localisation
tolerance) during validation.

Each handler wraps one ``CumulativeIterationMetric`` in ``monai.handlers.IgniteMetricHandler`` exactly like
MONAI's own ``HausdorffDistance`` handler, e.g. in an ``evaluate.json``::

    "key_val_metric": {
        "val_hd95": {"_target_": "monai_implicit.metrics.HausdorffPercentile", "percentile": 95,
                     "output_transform": "$monai.handlers.from_engine(['pred', 'label'])"}
    },
    "additional_metrics": {
        "val_lf1": {"_target_": "monai_implicit.metrics.LesionWise", "metric_name": "lf1",
                    "min_lesion_volume": 3, "output_transform": "$monai.handlers.from_engine(['pred', 'label'])"}
    }

A handler takes the keyword arguments of its metric class (same names and defaults) plus ``output_transform`` and
``save_details`` as in MONAI's handlers. With ``save_details=True`` the per-case values, ``(n_cases, n_classes)``,
land in ``engine.state.metric_details[name]`` where ``MetricsSaver`` writes them to ``<name>_raw.csv``. The
count-based handlers (lesion-wise, localisation) store the per-case values of their ``metric_name`` there, not the
raw counts, so the CSV reads like every other metric; the counts stay available from ``handler.metric_fn``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monai.handlers.ignite_metric import IgniteMetricHandler
from monai.metrics import CumulativeIterationMetric

from .base import CountMetric
from .lesion import LesionWiseMetric
from .localization import LocalizationF1Metric
from .surface import AverageSurfaceDistanceMetric, HausdorffPercentileMetric

__all__ = ["HausdorffPercentile", "AverageSurfaceDistance", "LesionWise", "LocalizationF1"]


class _MetricHandler(IgniteMetricHandler):
    """``IgniteMetricHandler`` around a ``metric_class`` built from the handler's keyword arguments."""

    metric_class: type[CumulativeIterationMetric]

    def __init__(
        self, *, output_transform: Callable = lambda x: x, save_details: bool = True, **metric_args: Any
    ) -> None:
        super().__init__(
            metric_fn=self.metric_class(**metric_args), output_transform=output_transform, save_details=save_details
        )


class HausdorffPercentile(_MetricHandler):
    """Hausdorff distance at a percentile (HD95 by default) averaged over cases and classes.

    Keyword arguments are those of :class:`~monai_implicit.metrics.HausdorffPercentileMetric`, plus
    ``output_transform`` and ``save_details`` as in MONAI's handlers. ``spacing=None`` reads the voxel size from the
    affine of the label MetaTensor (1 mm without one).
    """

    metric_class = HausdorffPercentileMetric


class AverageSurfaceDistance(_MetricHandler):
    """Average surface distance averaged over cases and classes.

    Keyword arguments are those of :class:`~monai_implicit.metrics.AverageSurfaceDistanceMetric`, plus
    ``output_transform`` and ``save_details``.
    """

    metric_class = AverageSurfaceDistanceMetric


class _CountMetricHandler(_MetricHandler):
    """Takes one ``metric_name`` and stores the per-case values of that metric (not the raw counts) as the metric
    details."""

    metric_fn: CountMetric

    def __init__(self, *, metric_name: str, **kwargs: Any) -> None:
        if not isinstance(metric_name, str):
            raise TypeError(f"metric_name must be one string for a handler, got {metric_name!r}.")
        super().__init__(metric_name=metric_name, **kwargs)

    def compute(self) -> Any:
        result = super().compute()
        if self.save_details and self._engine is not None and self._name is not None:
            name = self.metric_fn.metric_name
            self._engine.state.metric_details[self._name] = self.metric_fn.get_details()[name].float()
        return result


class LesionWise(_CountMetricHandler):
    """One lesion-wise metric (``"ldice_bounded"`` by default, or ``"ltpr"``, ``"lprecision"``, ``"lfpr_isbi"``,
    ``"lf1"``, the published ``"ldice"``, ``"lppv"``, ``"lfpr_nerd"``, or a count) averaged over cases.

    Keyword arguments are those of :class:`~monai_implicit.metrics.LesionWiseMetric` (with a single
    ``metric_name``), plus ``output_transform`` and ``save_details``. Attach one handler per reported metric.  Log
    the metrics of :data:`~monai_implicit.metrics.BOUNDED_LESION_METRICS` as fractions: NeRD's published ``ldice`` /
    ``lppv`` exceed 1 (and ``lfpr_nerd`` drops below 0) when one prediction merges several lesions.
    """

    metric_class = LesionWiseMetric

    def __init__(self, *, metric_name: str = "ldice_bounded", **kwargs: Any) -> None:
        super().__init__(metric_name=metric_name, **kwargs)


class LocalizationF1(_CountMetricHandler):
    """Localisation F1 (or ``"precision"`` / ``"recall"``) of 1D peak detection averaged over signals.

    Keyword arguments are those of :class:`~monai_implicit.metrics.LocalizationF1Metric` (with a single
    ``metric_name``), plus ``output_transform`` and ``save_details``.
    """

    metric_class = LocalizationF1Metric

    def __init__(self, *, metric_name: str = "f1", **kwargs: Any) -> None:
        super().__init__(metric_name=metric_name, **kwargs)
