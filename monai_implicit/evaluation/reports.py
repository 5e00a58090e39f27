"""The CSV tables and PNG figures that the study drivers of :mod:`monai_implicit.evaluation` write.

Every sweep writes its rows with :func:`write_table` and reads them back with :func:`read_tables` (one table per
network tag, so that running a sweep again for another network adds its curve to the same figure); figures are drawn
on matplotlib's Agg backend obtained from :func:`pyplot` and written with :func:`save_figure`.  matplotlib is optional:
without it the CSVs are still written and no figure is.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from monai.config import PathLike

__all__ = ["write_table", "read_tables", "pyplot", "save_figure"]

logger = logging.getLogger(__name__)


def write_table(path: PathLike, rows: Sequence[dict], fieldnames: Optional[Sequence[str]] = None) -> Path:
    """Write ``rows`` (dicts sharing their keys) to the CSV ``path`` (its folder is created); return the path.

    The columns are ``fieldnames``, by default the keys of the first row in their order.

    Raises:
        ValueError: no rows and no ``fieldnames`` (nothing to name the columns after).
    """
    if fieldnames is None:
        if not rows:
            raise ValueError(f"cannot write {str(path)!r}: no rows and no fieldnames.")
        fieldnames = list(rows[0])
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fieldnames))
        writer.writeheader()
        writer.writerows(rows)
    return out


def read_tables(folder: PathLike, prefix: str = "robustness_") -> dict[str, list[dict]]:
    """The rows (strings, as ``csv.DictReader`` reads them) of every ``<prefix><tag>.csv`` in ``folder``, keyed by
    ``<tag>`` in file-name order."""
    tables: dict[str, list[dict]] = {}
    for path in sorted(Path(folder).glob(f"{prefix}*.csv")):
        with open(path) as f:
            tables[path.stem[len(prefix):]] = list(csv.DictReader(f))
    return tables


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, or None (with a warning) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: CSV written, no plot.")
        return None
    return plt


def save_figure(fig: Any, folder: PathLike, filename: str, dpi: int = 100) -> str:
    """Lay out ``fig``, write it to ``folder/filename``, close it and return the path."""
    import matplotlib.pyplot as plt  # a figure exists, so matplotlib does

    fig.tight_layout()
    path = str(Path(folder) / filename)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
