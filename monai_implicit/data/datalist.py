"""Datalists: the embedded synthetic dataset or a dataset in its own layout, checked datalists and their split.

A bundle run must fail early, naming the offending file, when its data is wrong, instead of failing deep inside a
DataLoader worker (or worse, training on wrong labels).  These helpers are what the bundles' configs call:

* :func:`ensure_dataset`: the datalist of an MSD-layout folder, generating the bundle's embedded synthetic data;
* :func:`ensure_layout_dataset`: the same for a folder in a dataset's own layout (e.g. the WMH challenge's
  per-subject folders), converted by a datalist builder such as :func:`monai_implicit.data.wmh_datalist`;
* :func:`load_datalist`, :func:`train_val_split`, :func:`image_datalist`: checked datalists.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from monai.config import PathLike
from monai.data import load_decathlon_datalist, partition_dataset
from monai.data.utils import AFFINE_TOL

from monai_implicit.transforms.checks import ImageReadError, check_same_grid

__all__ = ["ensure_dataset", "ensure_layout_dataset", "load_datalist", "train_val_split", "image_datalist"]

logger = logging.getLogger(__name__)


def _same_path(a: PathLike, b: PathLike) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def ensure_dataset(
    dataset_dir: PathLike,
    synthetic_dir: Optional[PathLike] = None,
    generator: Optional[Callable[..., Any]] = None,
    real_data_hint: str = "",
    datalist_name: str = "dataset.json",
    **generator_kwargs: Any,
) -> str:
    """Return the datalist of ``dataset_dir``, generating the bundle's embedded synthetic dataset when appropriate.

    * ``dataset_dir`` holds ``datalist_name``: nothing to do.
    * ``dataset_dir`` is the bundle's embedded-data folder ``synthetic_dir`` and holds no complete dataset:
      ``generator(dataset_dir, overwrite=True, **generator_kwargs)`` writes one (e.g.
      :func:`monai_implicit.data.make_lits_like_dataset`) and ``real_data_hint`` is logged, telling the user how
      to point the bundle at real data.  Under ``torch.distributed`` (every rank must call it) only rank 0 writes.
    * otherwise a FileNotFoundError names the missing folder or datalist (with the hint).

    Returns:
        The absolute path of the datalist.
    """
    folder = Path(dataset_dir).expanduser()
    datalist = folder / datalist_name
    synthetic = synthetic_dir is not None and _same_path(folder, synthetic_dir)
    if synthetic and torch.distributed.is_available() and torch.distributed.is_initialized():
        # every rank calls this once: rank 0 writes, the others wait for it instead of writing the same files
        if torch.distributed.get_rank() == 0:
            _ensure(folder, datalist, synthetic, generator, real_data_hint, generator_kwargs)
        torch.distributed.barrier()
    return _ensure(folder, datalist, synthetic, generator, real_data_hint, generator_kwargs)


def _ensure(
    folder: Path,
    datalist: Path,
    synthetic: bool,
    generator: Optional[Callable[..., Any]],
    real_data_hint: str,
    generator_kwargs: dict,
) -> str:
    datalist_name = datalist.name
    if datalist.is_file():
        return str(datalist.resolve())
    hint = f" {real_data_hint}" if real_data_hint else ""
    if synthetic:
        if generator is None:
            raise ValueError("ensure_dataset: synthetic_dir is set but no generator was given.")
        logger.warning(f"no dataset in {folder}: generating the embedded synthetic dataset there.{hint}")
        folder.mkdir(parents=True, exist_ok=True)
        generator(folder, overwrite=True, **generator_kwargs)
        if not datalist.is_file():
            raise RuntimeError(f"the dataset generator did not write {datalist}.")
        return str(datalist.resolve())
    if not folder.exists():
        raise FileNotFoundError(f"dataset_dir {str(folder)!r} does not exist.{hint}")
    if not folder.is_dir():
        raise NotADirectoryError(f"dataset_dir {str(folder)!r} is not a folder.{hint}")
    raise FileNotFoundError(
        f"dataset_dir {str(folder)!r} has no {datalist_name} (MSD layout: imagesTr/, labelsTr/, {datalist_name}).{hint}"
    )


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

    * ``dataset_dir`` holds ``datalist_name``, or is the embedded ``synthetic_dir``: as :func:`ensure_dataset` (the
      synthetic data is generated with ``generator(dataset_dir, overwrite=True, **generator_kwargs)`` when missing
      and ``real_data_hint`` is logged);
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
    if _same_path(folder, synthetic_dir) or (folder / datalist_name).is_file():
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


def _check_readable(path: str) -> Optional[tuple[tuple[int, ...], np.ndarray]]:
    """Open the header of a NIfTI file (cheap) so that a corrupt file is reported before training starts.

    Returns:
        ``(spatial shape, affine (4, 4))`` of a NIfTI file (the spatial shape is at most the first three axes: NIfTI
        stores time or channels after them), None for other formats (not read here).
    """
    if path.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        try:
            image = nib.load(path)
            header = image.header
            shape, _ = header.get_data_shape(), header.get_zooms()
            return tuple(int(n) for n in shape[:3]), np.asarray(image.affine, dtype=np.float64)
        except Exception as e:  # nibabel raises several types for truncated or non-NIfTI files
            raise ImageReadError(f"cannot read image {path!r}: {type(e).__name__}: {e}") from e
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise ImageReadError(f"image {path!r} is an empty file.")
    return None


def load_datalist(
    datalist_file: PathLike,
    keys: Sequence[str] = ("image", "label"),
    data_list_key: str = "training",
    base_dir: Optional[PathLike] = None,
    check_headers: bool = True,
    grid_keys: Optional[Sequence[str]] = ("image", "label"),
    affine_tol: float = AFFINE_TOL,
) -> list[dict]:
    """``monai.data.load_decathlon_datalist`` plus a check that every file of ``keys`` exists and can be read, and
    that every image shares the voxel grid of its label.

    Args:
        datalist_file: MSD-style JSON.
        keys: entries whose paths are checked (``("image",)`` for an inference list).
        data_list_key: ``"training"``, ``"validation"``, ``"test"``...
        base_dir: folder the relative paths are resolved against (default: the datalist's folder).
        check_headers: also open the NIfTI headers (fast; catches truncated or non-image files).
        grid_keys: ``(image_key, label_key)`` whose NIfTI files must share one voxel grid: the same spatial shape
            and affines equal within ``affine_tol``, checked on the headers only (with ``check_headers``, when
            both keys are in ``keys``). A multi-file image (one file per modality) is checked file by file. A label
            on another grid would otherwise be resampled by its own affine and train to completion misaligned.
            None disables the check.
        affine_tol: largest admissible absolute difference of any affine entry (MONAI's ``AFFINE_TOL``, 1e-3).

    Raises:
        FileNotFoundError: the datalist or one of its files does not exist (the message names it).
        ValueError: an entry misses a key, a file cannot be read (:class:`~monai_implicit.transforms.ImageReadError`)
            or an image and its label differ in grid (:class:`~monai_implicit.transforms.GridMismatchError`; the
            message names both files).
    """
    if not os.path.isfile(datalist_file):
        raise FileNotFoundError(f"datalist {str(datalist_file)!r} does not exist.")
    items = load_decathlon_datalist(str(datalist_file), True, data_list_key, base_dir)
    if not items:
        raise ValueError(f"datalist {str(datalist_file)!r} has no entries under {data_list_key!r}.")
    if grid_keys is not None and len(grid_keys) != 2:
        raise ValueError(f"grid_keys must be (image_key, label_key) or None, got {grid_keys!r}.")
    compare = check_headers and grid_keys is not None and all(k in keys for k in grid_keys)
    for i, item in enumerate(items):
        grids: dict[str, list[tuple[str, Any]]] = {}
        for key in keys:
            if key not in item:
                raise ValueError(f"entry {i} of {str(datalist_file)!r} has no {key!r}: {item}.")
            for path in item[key] if isinstance(item[key], (list, tuple)) else [item[key]]:
                if not os.path.exists(path):
                    raise FileNotFoundError(f"{key} {path!r} (entry {i} of {str(datalist_file)!r}) does not exist.")
                if check_headers:
                    grids.setdefault(key, []).append((path, _check_readable(path)))
        if compare:
            image_key, label_key = grid_keys  # type: ignore[misc]
            for label_path, label_grid in grids[label_key]:
                for image_path, image_grid in grids[image_key]:
                    if image_grid is not None and label_grid is not None:
                        check_same_grid(image_grid[0], image_grid[1], image_path, label_grid[0], label_grid[1],
                                        label_path, affine_tol)
    return items


def train_val_split(
    datalist_file: PathLike,
    keys: Sequence[str] = ("image", "label"),
    val_fraction: float = 0.1,
    seed: int = 0,
    **load_kwargs: Any,
) -> tuple[list[dict], list[dict]]:
    """The training and validation lists of a datalist: its own ``"validation"`` list when it has a non-empty one,
    otherwise a seeded random split of ``"training"`` (``monai.data.partition_dataset``).

    A dataset whose held-out cases were chosen on purpose (e.g. MNI152 slabs separated from the training slices by a
    gap, :func:`monai_implicit.data.make_mni152_dataset`) must not be re-split at random: neighbouring slices of one
    volume are near copies, and validating on them measures memorisation.

    Args:
        datalist_file: MSD-style JSON.
        keys, load_kwargs: as in :func:`load_datalist` (every listed file is checked).
        val_fraction: fraction of ``"training"`` held out when the file has no validation list.
        seed: seed of that split.

    Raises:
        ValueError: ``val_fraction`` outside (0, 1) when a random split is needed, or a split that leaves either side
            empty (the message names the file and the counts).
    """
    with open(datalist_file) as f:
        declared = json.load(f).get("validation")
    train = load_datalist(datalist_file, keys, **load_kwargs)
    if declared:
        return train, load_datalist(datalist_file, keys, data_list_key="validation", **load_kwargs)
    if not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}.")
    train, val = partition_dataset(train, ratios=[1.0 - val_fraction, val_fraction], shuffle=True, seed=seed)
    if not train or not val:
        raise ValueError(
            f"{datalist_file}: {len(train) + len(val)} training case(s) cannot be split with val_fraction="
            f"{val_fraction} (training {len(train)}, validation {len(val)}); add cases or a 'validation' list."
        )
    return train, val


def image_datalist(folder: PathLike, pattern: str = "*.nii*", key: str = "image") -> list[dict]:
    """``[{key: path}, ...]`` for the files of ``folder`` matching the glob ``pattern`` (sorted; ``**`` recurses).

    Raises:
        FileNotFoundError: ``folder`` does not exist or nothing matches (the message names both).
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"input folder {str(root)!r} does not exist or is not a folder.")
    files = sorted(str(p) for p in root.glob(pattern) if p.is_file() and ".part" not in p.name)
    if not files:
        raise FileNotFoundError(f"no file matches {pattern!r} in {str(root)!r}.")
    return [{key: f} for f in files]
