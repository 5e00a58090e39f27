"""monai_implicit.metrics: lesion-wise detection metrics, fast surface distances, 1D localisation F1.

Each metric comes as a functional ``compute_*`` on batch-first tensors, a MONAI ``CumulativeIterationMetric``
and an ignite handler (``monai.handlers.IgniteMetricHandler``) for bundle configs and ``MetricsSaver``.

Modules: :mod:`.surface`, :mod:`.lesion`, :mod:`.localization` (the metrics), :mod:`.handlers` (their ignite
handlers), :mod:`.base` (``CountMetric``, the base of the count-based metrics), :mod:`.foreground` (the sparse
foreground engine all of them run on), :mod:`.spacing` (voxel spacing) and :mod:`.validation` (input checks).
"""

from .base import CountMetric
from .handlers import AverageSurfaceDistance, HausdorffPercentile, LesionWise, LocalizationF1
from .lesion import (
    BOUNDED_LESION_METRICS,
    LESION_COUNTS,
    LESION_METRICS,
    OVERLAP_RULES,
    LesionWiseMetric,
    compute_lesion_counts,
    compute_lesion_wise,
    connectivity_rank,
    label_foreground,
    lesion_metrics_from_counts,
)
from .localization import (
    LOCALIZATION_COUNTS,
    LOCALIZATION_METRICS,
    LocalizationF1Metric,
    compute_localization_counts,
    compute_localization_f1,
    find_signal_peaks,
    localization_metrics_from_counts,
    match_positions,
)
from .surface import (
    DISTANCE_REDUCTIONS,
    AverageSurfaceDistanceMetric,
    HausdorffPercentileMetric,
    compute_average_surface_distance,
    compute_hausdorff_percentile,
    surface_distances,
    surface_voxels,
)
