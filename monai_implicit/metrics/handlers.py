"""Ignite handlers for the metrics of this package, usable in MONAI bundle configs and with ``MetricsSaver``.

They report the evaluation metrics of NeRD (seeds/001 Sec. 4: LDice, LTPR, LFPR, HD95, ASD) and of the
micro-bubble localisation study (seeds/004 Sec. 4: F1 with a localisation tolerance) during validation.

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

With ``save_details=True`` the per-case values, ``(n_cases, n_classes)``, land in
``engine.state.metric_details[name]`` where ``MetricsSaver`` writes them to ``<name>_raw.csv``. The count-based
handlers (lesion-wise, localisation) store the per-case values of their ``metric_name`` there, not the raw
counts, so the CSV reads like every other metric; the counts stay available from ``handler.metric_fn``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional, Union

from monai.handlers.ignite_metric import IgniteMetricHandler
from monai.utils import MetricReduction

from ._utils import CountMetric, SpacingLike
from .lesion import LesionWiseMetric
from .localization import LocalizationF1Metric
from .surface import AverageSurfaceDistanceMetric, EmptyValue, HausdorffPercentileMetric

__all__ = ["HausdorffPercentile", "AverageSurfaceDistance", "LesionWise", "LocalizationF1"]


class HausdorffPercentile(IgniteMetricHandler):
    """Hausdorff distance at a percentile (HD95 by default) averaged over cases and classes.

    Arguments are those of :class:`~monai_implicit.metrics.HausdorffPercentileMetric`, plus ``output_transform``
    and ``save_details`` as in MONAI's handlers. ``spacing=None`` reads the voxel size from the affine of the
    label MetaTensor (1 mm without one).
    """

    def __init__(
        self,
        include_background: bool = False,
        percentile: Optional[float] = 95.0,
        distance_reduction: str = "max",
        directed: bool = False,
        spacing: SpacingLike = None,
        empty: EmptyValue = "diagonal",
        both_empty: EmptyValue = 0.0,
        num_classes: Optional[int] = None,
        reduction: Union[MetricReduction, str] = MetricReduction.MEAN,
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
        spatial_dims: Optional[int] = None,
    ) -> None:
        metric_fn = HausdorffPercentileMetric(
            include_background=include_background, percentile=percentile, distance_reduction=distance_reduction,
            directed=directed, spacing=spacing, empty=empty, both_empty=both_empty, num_classes=num_classes,
            reduction=reduction, spatial_dims=spatial_dims,
        )
        super().__init__(metric_fn=metric_fn, output_transform=output_transform, save_details=save_details)


class AverageSurfaceDistance(IgniteMetricHandler):
    """Average surface distance averaged over cases and classes.

    Arguments are those of :class:`~monai_implicit.metrics.AverageSurfaceDistanceMetric`, plus
    ``output_transform`` and ``save_details``.
    """

    def __init__(
        self,
        include_background: bool = False,
        distance_reduction: str = "pooled",
        directed: bool = False,
        spacing: SpacingLike = None,
        empty: EmptyValue = "diagonal",
        both_empty: EmptyValue = 0.0,
        num_classes: Optional[int] = None,
        reduction: Union[MetricReduction, str] = MetricReduction.MEAN,
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
        spatial_dims: Optional[int] = None,
    ) -> None:
        metric_fn = AverageSurfaceDistanceMetric(
            include_background=include_background, distance_reduction=distance_reduction, directed=directed,
            spacing=spacing, empty=empty, both_empty=both_empty, num_classes=num_classes, reduction=reduction,
            spatial_dims=spatial_dims,
        )
        super().__init__(metric_fn=metric_fn, output_transform=output_transform, save_details=save_details)


class _CountMetricHandler(IgniteMetricHandler):
    """Stores the per-case values of the selected metric (not the raw counts) as the metric details."""

    metric_fn: CountMetric

    def compute(self) -> Any:
        result = super().compute()
        if self.save_details and self._engine is not None and self._name is not None:
            name = self.metric_fn.metric_name
            self._engine.state.metric_details[self._name] = self.metric_fn.get_details()[name].float()
        return result


class LesionWise(_CountMetricHandler):
    """One lesion-wise metric (``"ldice_bounded"`` by default, or ``"ltpr"``, ``"lprecision"``, ``"lfpr_isbi"``,
    ``"lf1"``, the published ``"ldice"``, ``"lppv"``, ``"lfpr_nerd"``, or a count) averaged over cases.

    Arguments are those of :class:`~monai_implicit.metrics.LesionWiseMetric` (with a single ``metric_name``),
    plus ``output_transform`` and ``save_details``. Attach one handler per reported metric.  Log the metrics of
    :data:`~monai_implicit.metrics.BOUNDED_LESION_METRICS` as fractions: NeRD's published ``ldice`` / ``lppv``
    exceed 1 (and ``lfpr_nerd`` drops below 0) when one prediction merges several lesions.
    """

    def __init__(
        self,
        metric_name: str = "ldice_bounded",
        include_background: bool = False,
        connectivity: Optional[int] = None,
        min_lesion_volume: float = 0.0,
        overlap: str = "any",
        overlap_threshold: float = 0.0,
        spacing: SpacingLike = None,
        num_classes: Optional[int] = None,
        empty: str = "wmh",
        pooled: bool = False,
        reduction: Union[MetricReduction, str] = MetricReduction.MEAN,
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
        spatial_dims: Optional[int] = None,
    ) -> None:
        if not isinstance(metric_name, str):
            raise TypeError(f"metric_name must be one string for a handler, got {metric_name!r}.")
        metric_fn = LesionWiseMetric(
            metric_name=metric_name, include_background=include_background, connectivity=connectivity,
            min_lesion_volume=min_lesion_volume, overlap=overlap, overlap_threshold=overlap_threshold,
            spacing=spacing, num_classes=num_classes, empty=empty, pooled=pooled, reduction=reduction,
            spatial_dims=spatial_dims,
        )
        super().__init__(metric_fn=metric_fn, output_transform=output_transform, save_details=save_details)


class LocalizationF1(_CountMetricHandler):
    """Localisation F1 (or ``"precision"`` / ``"recall"``) of 1D peak detection averaged over signals.

    Arguments are those of :class:`~monai_implicit.metrics.LocalizationF1Metric` (with a single
    ``metric_name``), plus ``output_transform`` and ``save_details``.
    """

    def __init__(
        self,
        metric_name: str = "f1",
        threshold: float = 0.5,
        tolerance: float = 4,
        min_distance: Optional[int] = None,
        empty: str = "wmh",
        pooled: bool = False,
        reduction: Union[MetricReduction, str] = MetricReduction.MEAN,
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
    ) -> None:
        if not isinstance(metric_name, str):
            raise TypeError(f"metric_name must be one string for a handler, got {metric_name!r}.")
        metric_fn = LocalizationF1Metric(
            metric_name=metric_name, threshold=threshold, tolerance=tolerance, min_distance=min_distance,
            empty=empty, pooled=pooled, reduction=reduction,
        )
        super().__init__(metric_fn=metric_fn, output_transform=output_transform, save_details=save_details)
