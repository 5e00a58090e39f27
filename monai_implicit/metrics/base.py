"""Base class and ratio helpers of the count-based metrics (lesion-wise detection, localisation F1).

A count-based metric keeps integer counts per case (numbers of true, predicted and matched objects) and derives its
ratios from them, like MONAI's ``ConfusionMatrixMetric``. Ratios whose denominator is 0 (an empty case) get a
documented value: with ``empty="wmh"`` (the WMH-challenge convention) 1 for rates of the form ``matched / n``, with
``empty="nan"`` NaN, which ``aggregate()`` skips.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union

import torch
from monai.metrics import CumulativeIterationMetric
from monai.metrics.utils import do_metric_reduction
from monai.utils import MetricReduction

from monai_implicit.utils import check_option

__all__ = ["EMPTY_RULES", "CountMetric", "buffer_tensor", "empty_fill", "safe_ratio", "f1_score"]

#: how ratios of empty cases are defined: ``"wmh"`` (WMH-challenge values) or ``"nan"`` (undefined, skipped)
EMPTY_RULES = ("wmh", "nan")


def empty_fill(empty: str) -> float:
    """The value of a rate ``matched / n`` with ``n == 0``: 1 under ``empty="wmh"``, NaN under ``"nan"``."""
    return 1.0 if check_option(empty, EMPTY_RULES, "empty") == "wmh" else float("nan")


def safe_ratio(num: torch.Tensor, den: torch.Tensor, if_empty: float) -> torch.Tensor:
    """``num / den`` elementwise, ``if_empty`` where ``den == 0``."""
    safe = torch.where(den > 0, den, torch.ones_like(den))
    return torch.where(den > 0, num / safe, torch.full_like(num, if_empty))


def f1_score(precision: torch.Tensor, recall: torch.Tensor) -> torch.Tensor:
    """Harmonic mean ``2 P R / (P + R)``: 0 when ``P + R = 0``, NaN where either rate is NaN."""
    f1 = safe_ratio(2 * precision * recall, precision + recall, 0.0)
    return torch.where(torch.isnan(precision) | torch.isnan(recall), torch.full_like(f1, float("nan")), f1)


def buffer_tensor(metric: CumulativeIterationMetric) -> torch.Tensor:
    """The accumulated per-case values of ``metric`` (``get_buffer()``), checked to be one tensor."""
    data = metric.get_buffer()
    if not isinstance(data, torch.Tensor):
        raise ValueError(f"the data to aggregate must be a PyTorch Tensor, got {type(data).__name__}.")
    return data


class CountMetric(CumulativeIterationMetric):
    """Cumulative metric whose buffer holds per-case *counts* (``(n_cases, n_classes, n_counts)``) from which
    named ratios are derived, like MONAI's ``ConfusionMatrixMetric``.

    Subclasses define ``COUNT_NAMES``, ``METRIC_NAMES`` and ``from_counts(counts, empty) -> dict`` (a static method).

    ``aggregate()`` either averages the per-case ratios over non-NaN cases (``pooled=False``, the usual
    "mean over cases") or reduces the counts first and derives the ratios from the totals (``pooled=True``,
    e.g. the fraction of all lesions of a data set that were detected).
    """

    COUNT_NAMES: tuple[str, ...] = ()
    METRIC_NAMES: tuple[str, ...] = ()

    def __init__(
        self,
        metric_name: Union[str, Sequence[str]],
        empty: str,
        pooled: bool,
        reduction: Union[MetricReduction, str],
        get_not_nans: bool,
    ) -> None:
        super().__init__()
        names = (metric_name,) if isinstance(metric_name, str) else tuple(metric_name)
        if not names:
            raise ValueError("metric_name must name at least one metric.")
        self._names = tuple(check_option(n, self.METRIC_NAMES + self.COUNT_NAMES, "metric_name") for n in names)
        self.metric_name = self._names[0] if isinstance(metric_name, str) else metric_name
        self.empty = check_option(empty, EMPTY_RULES, "empty")
        self.pooled = pooled
        self.reduction = reduction
        self.get_not_nans = get_not_nans

    @staticmethod
    def from_counts(counts: torch.Tensor, empty: str) -> dict[str, torch.Tensor]:
        raise NotImplementedError("a CountMetric must implement from_counts().")

    def get_details(self) -> dict[str, torch.Tensor]:
        """Every count and ratio per case: ``{name: (n_cases, n_classes)}``."""
        return self.from_counts(buffer_tensor(self), self.empty)

    def aggregate(  # type: ignore[override]
        self, reduction: Union[MetricReduction, str, None] = None, pooled: Optional[bool] = None
    ) -> Any:
        """Reduce over cases with a MONAI ``MetricReduction`` (default: the constructor's, ``"mean"``).

        Returns one tensor (or ``(tensor, not_nans)`` with ``get_not_nans``) when ``metric_name`` is a string,
        otherwise a list in the order of ``metric_name``.
        """
        counts = buffer_tensor(self)
        red = reduction or self.reduction
        if self.pooled if pooled is None else pooled:
            reduced, not_nans = do_metric_reduction(counts, red)
            values = self.from_counts(reduced, self.empty)
            results = [(values[n], not_nans[..., 0] if not_nans.ndim else not_nans) for n in self._names]
        else:
            values = self.from_counts(counts, self.empty)
            results = [do_metric_reduction(values[n], red) for n in self._names]
        out = [r if self.get_not_nans else r[0] for r in results]
        return out[0] if isinstance(self.metric_name, str) else out
