"""Datasets whose real layout has no MSD ``dataset.json`` (e.g. the WMH challenge's per-subject folders).

:func:`monai_implicit.bundles.ensure_dataset` handles MSD-layout folders (a ``dataset.json`` is there) and the
bundle's embedded synthetic data.  :func:`ensure_layout_dataset` adds the third case: a folder in a dataset's own
layout, converted by a datalist builder such as :func:`monai_implicit.data.wmh_datalist`, with the datalist written
outside that folder (real data folders are often read-only or shared).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Union

from .data import ensure_dataset

__all__ = ["ensure_layout_dataset"]

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]


def ensure_layout_dataset(
    dataset_dir: PathLike,
    synthetic_dir: PathLike,
    generator: Callable[..., Any],
    converter: Callable[[PathLike, PathLike], Any],
    converted_datalist: PathLike,
    real_data_hint: str = "",
    datalist_name: str = "dataset.json",
    **generator_kwargs: Any,
) -> str:
    """Return the path of a datalist for ``dataset_dir``, generating or converting it when needed.

    * ``dataset_dir`` holds ``datalist_name``, or is the embedded ``synthetic_dir``: as
      :func:`monai_implicit.bundles.ensure_dataset` (the synthetic data is generated with
      ``generator(dataset_dir, overwrite=True, **generator_kwargs)`` when missing and ``real_data_hint`` is logged);
    * otherwise ``converter(dataset_dir, converted_datalist)`` writes a datalist of the folder's own layout (its
      errors, which name what is missing, are raised with ``real_data_hint`` appended) and that path is returned.

    Args:
        dataset_dir: the dataset folder given by the user.
        synthetic_dir: the bundle's embedded-data folder.
        generator: writes the synthetic dataset (and its datalist).
        converter: ``converter(folder, out_file)`` writes a datalist for the folder's layout.
        converted_datalist: where the converted datalist goes (e.g. ``<bundle>/data/wmh_datalist.json``).
        real_data_hint: how to point the bundle at real data (logged / appended to errors).
        datalist_name: name of a datalist inside ``dataset_dir``.

    Returns:
        The absolute path of the datalist.
    """
    folder = Path(dataset_dir).expanduser()
    same = folder.resolve() == Path(synthetic_dir).expanduser().resolve()
    if same or (folder / datalist_name).is_file():
        return ensure_dataset(dataset_dir, synthetic_dir, generator, real_data_hint, datalist_name, **generator_kwargs)
    hint = f" {real_data_hint}" if real_data_hint else ""
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset_dir {str(folder)!r} does not exist or is not a folder.{hint}")
    try:
        out = converter(folder, converted_datalist)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e}{hint}") from e
    out = Path(out if out is not None else converted_datalist)
    logger.info(f"wrote the datalist of {folder} to {out}.")
    return str(out.resolve())

