"""Dataset fingerprint and the training configuration derived from it (self-configuration, issue 15).

The design follows nnU-Net ("nnU-Net: a self-configuring method for deep learning-based biomedical image
segmentation", Isensee et al., Nature Methods 2021): a training set is summarised once by a *fingerprint* (spacings,
shapes, foreground intensities, class frequencies), and the data-dependent choices of a training run (target
spacing, intensity normalisation, patch size, batch size, network depth) follow from it and from the hardware by
a few fixed, documented rules.  The rules here are our own small versions of nnU-Net's:

* :func:`dataset_fingerprint` runs MONAI's ``monai.apps.auto3dseg.DataAnalyzer`` on the ``training`` list of an
  MSD-style ``dataset.json`` and keeps the few numbers the rules need, cached as ``fingerprint.json`` next to the
  datalist (recomputed when the datalist or any file it lists changes);
* :func:`plan_segmentation` turns a fingerprint and a device into a plan (``pixdim``, ``hu_window``,
  ``intensity_mean``/``intensity_std``, ``patch_size``, ``batch_size``, ``depth``), logs every value with the reason
  it was chosen and writes ``plan.json`` next to the checkpoints; explicit arguments always win;
* :func:`load_plan` reads ``plan.json`` back (evaluation and inference configs use the values the weights were
  trained with).

Axes are those of MONAI's ``Orientationd(axcodes="RAS")`` (DataAnalyzer reorients every case to RAS before
measuring it, as the bundles do before ``Spacingd``); spacings and sizes are in millimetres.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from monai.config import PathLike
from monai.data import load_decathlon_datalist
from monai.utils import look_up_option
from monai.utils.enums import DataStatsKeys, ImageStatsKeys, LabelStatsKeys

from monai_implicit.utils import check_int, check_ints, check_number, check_numbers

__all__ = [
    "CPU_VOXEL_BUDGET",
    "FINGERPRINT_FILE",
    "FINGERPRINT_VERSION",
    "PLAN_FILE",
    "dataset_fingerprint",
    "gpu_voxel_budget",
    "load_plan",
    "plan_segmentation",
]

logger = logging.getLogger(__name__)

#: version of the fingerprint's content; a cached fingerprint of another version is recomputed
FINGERPRINT_VERSION = 1
#: name of the cached fingerprint in the dataset folder (or ``cache_dir``)
FINGERPRINT_FILE = "fingerprint.json"
#: name of the plan written next to the checkpoints
PLAN_FILE = "plan.json"

#: voxels of one training sample on a CPU: a 2-core CPU trains a 64 x 64 x 48 volume in about a second per step
CPU_VOXEL_BUDGET = 64 * 64 * 48
#: voxels of one training sample on the reference GPU (nnU-Net's class of patch: 128 x 128 x 128, 192 x 160 x 64)
_GPU_REFERENCE_VOXELS = 128**3
#: memory of the reference GPU in GiB (twice nnU-Net's 8 GB target, see :func:`gpu_voxel_budget`)
_GPU_REFERENCE_GIB = 16.0
#: the GPU budget scales with memory between these multiples of the reference
_GPU_SCALE_RANGE = (0.125, 2.0)
#: nnU-Net's minimum batch size
_MIN_BATCH = 2
#: nnU-Net caps the batch so that one batch holds at most this fraction of the voxels of the whole dataset
_MAX_BATCH_DATASET_FRACTION = 0.05

_FINGERPRINT_KEYS = ("version", "num_cases", "spacing_median", "shape_median", "size_mm_median",
                     "foreground_intensity", "labels", "class_fractions", "source")
_FOREGROUND_KEYS = ("percentile_00_5", "percentile_99_5", "mean", "std", "median")
_PLAN_KEYS = ("pixdim", "hu_window", "intensity_mean", "intensity_std", "patch_size", "batch_size", "depth")


# ---------------------------------------------------------------------------------------------------------------
# helpers


def _atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` through a temporary file in the same folder and a rename.

    A reader (another process, a resumed run) sees either the old file or the complete new one, never a half
    written file that would then be rejected or, worse, half-read.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _as_list(value: Any) -> list[str]:
    """The file path(s) of a datalist entry value (one path, or a list of paths read as channels)."""
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (str, os.PathLike)) for v in value):
        return [os.fspath(v) for v in value]
    raise TypeError(f"expected a file path or a list of file paths, got {type(value).__name__} {value!r}")


def _resolve(folder: Path, path: str) -> str:
    # load_decathlon_datalist joins only "image"/"label" (and other keys when the file exists) with the folder;
    # join every listed path the same way so that a missing file is reported where it was looked for
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(str(folder), path))


def _read_training_list(datalist: Path, image_key: str, label_key: str) -> list[dict[str, list[str]]]:
    """The ``training`` entries of ``datalist`` as ``{image_key: [paths], label_key: [paths]}`` with checked files."""
    if not datalist.is_file():
        raise FileNotFoundError(f"datalist file {str(datalist)!r} does not exist (expected an MSD-style dataset.json).")
    try:
        entries = load_decathlon_datalist(datalist, is_segmentation=True, data_list_key="training")
    except json.JSONDecodeError as err:
        raise ValueError(f"datalist file {str(datalist)!r} is not valid JSON: {err}.") from err
    except ValueError as err:  # MONAI's message for a missing "training" key
        raise ValueError(f"datalist file {str(datalist)!r} has no 'training' list: {err}") from err
    if not isinstance(entries, list) or len(entries) == 0:
        raise ValueError(f"datalist file {str(datalist)!r}: the 'training' list is empty; expected at least one "
                         f"{{{image_key!r}: ..., {label_key!r}: ...}} entry.")
    folder = datalist.parent
    items = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or image_key not in entry or label_key not in entry:
            got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise ValueError(f"datalist file {str(datalist)!r}: training entry {i} must have the keys "
                             f"{image_key!r} and {label_key!r}, got {got}.")
        item = {}
        for key in (image_key, label_key):
            try:
                paths = [_resolve(folder, p) for p in _as_list(entry[key])]
            except TypeError as err:
                raise ValueError(f"datalist file {str(datalist)!r}: training entry {i}, key {key!r}: {err}.") from err
            for p in paths:
                if not os.path.isfile(p):
                    raise FileNotFoundError(f"datalist file {str(datalist)!r}: training entry {i} lists the {key} "
                                            f"file {p!r}, which does not exist.")
            item[key] = paths
        items.append(item)
    return items


def _source_hash(datalist: Path, items: list[dict[str, list[str]]], image_key: str, label_key: str) -> str:
    """SHA-256 of the datalist's bytes, the keys read, and the size and mtime of every listed image and label file.

    Any edit of the datalist or any rewritten or touched data file changes it.  Absolute paths are not part of it:
    the datalist's (relative) paths already are, so a dataset copied with its timestamps keeps its cache.
    """
    h = hashlib.sha256()
    h.update(f"monai_implicit fingerprint v{FINGERPRINT_VERSION}\n{image_key}\n{label_key}\n".encode())
    h.update(datalist.read_bytes())
    for item in items:
        for key in (image_key, label_key):
            for p in item[key]:
                st = os.stat(p)
                h.update(f"\n{key} {st.st_size} {st.st_mtime_ns}".encode())
    return h.hexdigest()


def _read_cache(path: Path, expected_hash: str) -> Optional[dict]:
    """The cached fingerprint at ``path`` when it exists, parses and matches ``expected_hash``; else None."""
    if not path.is_file():
        return None
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        logger.warning(f"fingerprint cache {str(path)!r} is unreadable ({err}); recomputing it.")
        return None
    if not isinstance(cached, dict) or cached.get("version") != FINGERPRINT_VERSION:
        logger.info(f"fingerprint cache {str(path)!r} has another format version; recomputing it.")
        return None
    if any(k not in cached for k in _FINGERPRINT_KEYS):
        logger.warning(f"fingerprint cache {str(path)!r} lacks some of the keys {list(_FINGERPRINT_KEYS)}; "
                       "recomputing it.")
        return None
    if not isinstance(cached.get("source"), dict) or cached["source"].get("hash") != expected_hash:
        logger.info(f"fingerprint cache {str(path)!r} does not match the datalist and its files any more "
                    "(edited or touched since); recomputing it.")
        return None
    return cached


def _innermost(err: BaseException) -> BaseException:
    while err.__cause__ is not None:
        err = err.__cause__
    return err


def _run_data_analyzer(items: list[dict[str, list[str]]], image_key: str, label_key: str,
                       device: Union[str, torch.device], datalist_file: Path, diagnose: bool = True) -> list[dict]:
    """Per-case statistics of MONAI's DataAnalyzer (one dict per case, in the order of ``items``).

    Raises:
        ValueError: DataAnalyzer failed (a file it cannot read, a label whose shape differs from its image's); the
            message names the datalist and the case.
    """
    from monai.apps.auto3dseg import DataAnalyzer

    # DataAnalyzer reads its list with datafold_read(fold=-1): entries without a "fold" key are all returned as
    # training cases, and every path is joined with ``dataroot`` (a no-op for our absolute paths and dataroot "")
    datalist = {"training": [{image_key: it[image_key] if len(it[image_key]) > 1 else it[image_key][0],
                              label_key: it[label_key] if len(it[label_key]) > 1 else it[label_key][0]}
                             for it in items]}
    try:
        with tempfile.TemporaryDirectory(prefix="fingerprint_") as tmp:
            # it always writes its yaml summaries to output_path: keep them out of the dataset folder
            analyzer = DataAnalyzer(datalist, dataroot="", output_path=os.path.join(tmp, "datastats.yaml"),
                                    device=device, worker=0, image_key=image_key, label_key=label_key,
                                    do_ccp=False, hist_bins=0)
            stats = analyzer.get_all_case_stats()
    except Exception as err:
        cause = _innermost(err)
        message = f"{type(cause).__name__}: {cause}"
        listed = [p for it in items for p in it[image_key] + it[label_key]]
        if diagnose and len(items) > 1 and not any(p in message for p in listed):
            # the loader's error does not say which case: analyse them one by one up to the first that fails
            for it in items:
                try:
                    _run_data_analyzer([it], image_key, label_key, device, datalist_file, diagnose=False)
                except ValueError as case_err:
                    raise case_err from err
        where = f" on the case {items[0][image_key][0]!r}" if len(items) == 1 else ""
        raise ValueError(f"datalist file {str(datalist_file)!r}: MONAI's DataAnalyzer failed{where}: "
                         f"{message}") from err
    return list(stats[DataStatsKeys.BY_CASE])


def _summarise(by_case: list[dict], items: list[dict[str, list[str]]], datalist: Path, image_key: str) -> dict:
    """The fingerprint's numbers from DataAnalyzer's per-case statistics (see :func:`dataset_fingerprint`)."""
    if len(by_case) != len(items):
        done = {os.path.normpath(str(c.get(DataStatsKeys.BY_CASE_IMAGE_PATH))) for c in by_case}
        failed = [it[image_key][0] for it in items if os.path.normpath(it[image_key][0]) not in done]
        raise ValueError(f"datalist file {str(datalist)!r}: MONAI's DataAnalyzer could not read or analyse "
                         f"{len(items) - len(by_case)} of {len(items)} training cases: {failed} (see its log).")
    spacings, shapes, sizes = [], [], []
    fg_cases, fractions = [], []
    for case, item in zip(by_case, items):
        img = case[DataStatsKeys.IMAGE_STATS]
        if int(img[ImageStatsKeys.CHANNELS]) != 1:
            raise ValueError(f"datalist file {str(datalist)!r}: image {item[image_key]} has "
                             f"{img[ImageStatsKeys.CHANNELS]} channels; the fingerprint supports one-channel images.")
        spacings.append([float(s) for s in img[ImageStatsKeys.SPACING]])
        shapes.append([int(s) for s in img[ImageStatsKeys.SHAPE][0]])
        sizes.append([float(s) for s in img[ImageStatsKeys.SIZEMM]])
        lab = case[DataStatsKeys.LABEL_STATS]
        # the per-label list is in the order of "labels" (not indexed by label value), and a label absent from a
        # case is absent from its list: map values to fractions here, absent ones count as 0
        fractions.append({int(v): float(d[LabelStatsKeys.PIXEL_PCT])
                          for v, d in zip(lab[LabelStatsKeys.LABEL_UID], lab[LabelStatsKeys.LABEL])})
        if any(v > 0 for v in fractions[-1]):
            # a case without foreground gets DataAnalyzer's placeholder statistics of [0.0]: leave it out
            fg_cases.append(case[DataStatsKeys.FG_IMAGE_STATS][ImageStatsKeys.INTENSITY][0])
    if not fg_cases:
        raise ValueError(f"datalist file {str(datalist)!r}: no training label has a foreground voxel (label > 0); "
                         "the foreground intensity statistics need at least one.")
    means = np.array([c["mean"] for c in fg_cases], dtype=np.float64)
    stds = np.array([c["stdev"] for c in fg_cases], dtype=np.float64)
    # std of the equal-weight mixture of the cases' foreground intensity distributions (what nnU-Net's equal number
    # of sampled foreground voxels per case estimates): within-case variance plus the spread of the case means
    mixture_std = float(np.sqrt(np.mean(stds**2) + np.mean((means - means.mean()) ** 2)))
    foreground = {
        "percentile_00_5": float(np.mean([c["percentile_00_5"] for c in fg_cases])),
        "percentile_99_5": float(np.mean([c["percentile_99_5"] for c in fg_cases])),
        "mean": float(means.mean()),
        "std": mixture_std,
        "median": float(np.mean([c["median"] for c in fg_cases])),
        "num_cases": len(fg_cases),
    }
    labels = sorted(set().union(*fractions))
    return {
        "version": FINGERPRINT_VERSION,
        "num_cases": len(by_case),
        "spacing_median": [float(v) for v in np.median(np.asarray(spacings), axis=0)],
        "shape_median": [float(v) for v in np.median(np.asarray(shapes), axis=0)],
        "size_mm_median": [float(v) for v in np.median(np.asarray(sizes), axis=0)],
        "foreground_intensity": foreground,
        "labels": labels,
        "class_fractions": {str(v): float(np.mean([f.get(v, 0.0) for f in fractions])) for v in labels if v != 0},
    }


# ---------------------------------------------------------------------------------------------------------------
# fingerprint


def dataset_fingerprint(
    datalist_file: PathLike,
    image_key: str = "image",
    label_key: str = "label",
    cache_dir: Optional[PathLike] = None,
    device: Union[str, torch.device] = "cpu",
    recompute: bool = False,
) -> dict:
    """The fingerprint of the ``training`` cases of an MSD-style ``dataset.json``, cached next to it.

    nnU-Net's first step ("nnU-Net: a self-configuring method for deep learning-based biomedical image
    segmentation", dataset fingerprint): the properties of the training set that the configuration rules of
    :func:`plan_segmentation` need.  The per-case statistics are MONAI's (``monai.apps.auto3dseg.DataAnalyzer``: every
    case loaded with ``LoadImaged``, reoriented with ``Orientationd(axcodes="RAS")``, foreground = label > 0); how
    they are summarised over cases is ours and stated for every value.

    Args:
        datalist_file: an MSD-style ``dataset.json`` whose ``training`` list holds ``{image_key: path, label_key:
            path}`` entries; relative paths are relative to its folder (``monai.data.load_decathlon_datalist``).
        image_key, label_key: the keys of the image and label paths in the entries.
        cache_dir: folder of the cached ``fingerprint.json`` (default: the datalist's folder).  When the cache cannot
            be written there (a read-only dataset), a warning is logged and the fingerprint is returned uncached.
        device: where DataAnalyzer computes (``"cpu"`` by default; ``"cuda"`` is faster on large volumes).
        recompute: ignore a matching cache and analyse the data again.

    Returns:
        a JSON-serialisable dict:

        * ``version``: 1 (a cache of another version is recomputed);
        * ``num_cases``: number of training cases;
        * ``spacing_median``: per-axis median over cases of the voxel spacing (mm, RAS axes, as stored in the
          headers: NIfTI keeps float32, e.g. 0.800000011920929);
        * ``shape_median``: per-axis median over cases of the image shape in voxels on its original grid (RAS axis
          order; a float: the mean of the two middle cases for an even number of cases);
        * ``size_mm_median``: per-axis median over cases of the physical size ``shape * spacing`` (mm); the median
          shape at another spacing ``p`` is ``size_mm_median / p``;
        * ``foreground_intensity``: intensities of the voxels with label > 0, over the cases that have any
          (``num_cases`` says how many): ``percentile_00_5`` / ``percentile_99_5`` and ``median`` are the averages
          over cases of each case's 0.5th / 99.5th percentile (linear interpolation) and median (what DataAnalyzer's
          summary reports, not the percentiles of all foreground voxels pooled); ``mean`` is the average of the case
          means; ``std`` is the standard deviation of the equal-weight mixture of the cases' foreground voxels,
          ``sqrt(mean(std_c**2) + var(mean_c))``, i.e. the pooled std when every case contributes equally, as
          nnU-Net's fixed number of sampled voxels per case does (DataAnalyzer's summary "stdev", the average of
          the case stds, leaves the spread between cases out);
        * ``labels``: the label values found in any case (sorted, 0 included);
        * ``class_fractions``: ``{"1": f1, ...}`` for every non-zero label: its fraction of all the voxels of a
          case, averaged over all cases (a case without the label counts 0; DataAnalyzer's summary would average
          over the cases that have it only);
        * ``source``: ``{"datalist": absolute path, "hash": see below, "image_key", "label_key"}``.

        The cache is reused only when its ``hash`` equals the SHA-256 of the datalist file's bytes, the two keys,
        and the size and modification time (ns) of every image and label file the training list names.

    Raises:
        FileNotFoundError: the datalist, or an image or label file it lists, does not exist (the message names it).
        ValueError: invalid JSON, no or an empty ``training`` list, an entry without the keys, a case DataAnalyzer
            could not read, a multi-channel image, or no foreground voxel in any label.
    """
    datalist = Path(os.path.abspath(os.fspath(datalist_file)))
    if not isinstance(image_key, str) or not isinstance(label_key, str) or image_key == label_key:
        raise ValueError(f"image_key and label_key must be two different strings, got {image_key!r} and {label_key!r}"
                         " (the fingerprint needs the labels for the foreground statistics).")
    items = _read_training_list(datalist, image_key, label_key)
    digest = _source_hash(datalist, items, image_key, label_key)
    cache_folder = Path(os.fspath(cache_dir)) if cache_dir is not None else datalist.parent
    cache_file = cache_folder / FINGERPRINT_FILE
    if not recompute:
        cached = _read_cache(cache_file, digest)
        if cached is not None:
            logger.info(f"dataset fingerprint: reusing {str(cache_file)!r} ({cached['num_cases']} cases).")
            cached["source"]["datalist"] = str(datalist)
            return cached

    start = time.perf_counter()
    by_case = _run_data_analyzer(items, image_key, label_key, device, datalist)
    fingerprint = _summarise(by_case, items, datalist, image_key)
    fingerprint["source"] = {"datalist": str(datalist), "hash": digest, "image_key": image_key,
                             "label_key": label_key}
    logger.info(f"dataset fingerprint of {len(items)} cases of {str(datalist)!r} computed in "
                f"{time.perf_counter() - start:.1f} s: median spacing {fingerprint['spacing_median']} mm, "
                f"median shape {fingerprint['shape_median']}, foreground 0.5-99.5 percentiles "
                f"[{fingerprint['foreground_intensity']['percentile_00_5']:.4g}, "
                f"{fingerprint['foreground_intensity']['percentile_99_5']:.4g}].")

    if cache_dir is None and not os.access(cache_folder, os.W_OK):
        logger.warning(f"dataset folder {str(cache_folder)!r} is not writable: the fingerprint is not cached "
                       "(pass cache_dir to cache it elsewhere).")
        return fingerprint
    try:
        cache_folder.mkdir(parents=True, exist_ok=True)
        _atomic_write_json(cache_file, fingerprint)
    except OSError as err:
        logger.warning(f"could not write the fingerprint cache {str(cache_file)!r} ({err}); continuing uncached.")
    return fingerprint


# ---------------------------------------------------------------------------------------------------------------
# plan


def gpu_voxel_budget(total_memory_bytes: int) -> int:
    """Voxels of one training sample (at batch size 2) on a GPU with ``total_memory_bytes`` of memory.

    ``128**3 * clip(memory_GiB / 16, 1/8, 2)``: 2,097,152 voxels (128 x 128 x 128) on a 16 GiB GPU, linear in memory,
    at least 262,144 (64**3) and at most 4,194,304 (e.g. 160 x 160 x 160, 256 x 256 x 64) from 32 GiB on.

    Why: nnU-Net's default plans target about 8 GB of GPU memory and give 3d patches of about 2 M voxels at batch
    size 2 (128 x 128 x 128 on LiTS, 192 x 160 x 64-like shapes on anisotropic data); its residual-encoder presets
    grow the patch with a larger memory target (about 24 and 40 GB).  Our reference is that class of patch on a
    16 GiB GPU, a margin of two over nnU-Net's target for the kernel networks of the implicit convolutions and
    full-precision training (a judgement, not a measurement of our networks: ``voxel_budget`` overrides it),
    growing with memory up to twice the reference, beyond which larger patches cost more step time than their extra
    context gives.  Memory beyond 32 GiB is not used by this rule; pass ``voxel_budget`` or ``batch_size`` to use it.
    """
    gib = float(total_memory_bytes) / 2**30
    scale = min(max(gib / _GPU_REFERENCE_GIB, _GPU_SCALE_RANGE[0]), _GPU_SCALE_RANGE[1])
    return int(round(_GPU_REFERENCE_VOXELS * scale))


def _coarsened_spacing(spacing: Sequence[float], size_mm: Sequence[float], budget: float) -> list[float]:
    """The spacing at which the median volume (``size_mm``) has ``budget`` voxels, coarsening the finest axes first.

    nnU-Net's low-resolution idea (its 3d_lowres configuration coarsens the spacing when the median volume is too
    large for a patch): the finest axes are raised together to a common spacing ``t`` (never above the coarsest
    axis), and when even the isotropic spacing of the coarsest axis leaves too many voxels, all axes are raised
    together.  With the axes sorted by spacing and the ``k`` finest ones at ``t``, the voxel count is
    ``prod_{i<=k}(L_i / t) * prod_{i>k}(L_i / s_i)``; the first ``k`` whose solution ``t`` does not pass the next
    spacing is the answer (``k = ndim`` is the isotropic case), so the result is exact, not iterated.
    """
    s = np.asarray(spacing, dtype=np.float64)
    size = np.asarray(size_mm, dtype=np.float64)
    order = np.argsort(s, kind="stable")
    n = len(s)
    for k in range(1, n + 1):
        fine, rest = order[:k], order[k:]
        t = (np.prod(size[fine]) * np.prod(size[rest] / s[rest]) / budget) ** (1.0 / k)
        if k == n or t <= s[order[k]]:
            out = s.copy()
            out[fine] = t
            return [float(v) for v in out]
    raise AssertionError("unreachable: k == ndim always returns")


def _fit_patch(target: np.ndarray, depth: int, budget: int, min_units: int,
               volume: Optional[np.ndarray] = None) -> Optional[list[int]]:
    """A patch of multiples of ``2**depth``, each at least ``min_units * 2**depth``, within ``budget`` voxels.

    ``target`` (the median shape at pixdim, scaled to the budget) is followed as closely as the two constraints
    allow: an axis shorter than the minimum is lengthened to it and the other axes shrink together (keeping their
    aspect ratio) so that the product stays within the budget; then each axis is rounded up to a multiple of
    ``2**depth``, and while that exceeds the budget the most over-rounded axis (largest ``patch / target``) is
    rounded down instead, one step at a time.

    Returns None when even the minimum exceeds the budget or, with ``volume`` (the median shape at pixdim), when
    the minimum would extend an axis beyond the volume rounded up: such a patch pads the images with nothing to learn
    from, and a shallower network is the better choice.
    """
    step = 2**depth
    lower = float(min_units * step)
    if volume is not None and np.any(lower > np.ceil(volume / step - 1e-9) * step):
        return None
    if lower ** len(target) > budget:
        return None
    t = np.asarray(target, dtype=np.float64).copy()
    fixed = np.zeros(len(t), dtype=bool)
    while True:  # at most ndim rounds: every round fixes one more axis or stops
        short = ~fixed & (t < lower)
        if not short.any():
            break
        fixed |= short
        t[fixed] = lower
        if fixed.all():
            break
        room = budget / lower ** int(fixed.sum())
        free = np.prod(t[~fixed])
        if free > room:
            t[~fixed] *= (room / free) ** (1.0 / int((~fixed).sum()))
    patch = np.maximum(np.ceil(t / step - 1e-9), min_units).astype(np.int64) * step
    smallest = np.maximum(np.floor(t / step + 1e-9), min_units).astype(np.int64) * step
    while int(np.prod(patch)) > budget:
        ratio = np.where(patch > smallest, patch / t, -np.inf)
        patch[int(np.argmax(ratio))] -= step
    return [int(v) for v in patch]


def _derived_patch(target: np.ndarray, volume: np.ndarray, budget: int, depth: Optional[int], max_depth: int,
                   min_bottleneck: int) -> tuple[list[int], int]:
    """The patch (and the depth, unless given) of :func:`plan_segmentation`'s rules, see :func:`_fit_patch`."""
    if depth is not None:
        fitted = _fit_patch(target, depth, budget, min_bottleneck)
        if fitted is None:  # the bottleneck minimum alone exceeds the budget at this depth: keep the depth
            fitted = _fit_patch(target, depth, budget, 1) or _fit_patch(target, depth, 2**62, 1)
            logger.warning(f"plan: with depth {depth}, no patch within the voxel budget {budget} keeps "
                           f"{min_bottleneck} voxels per axis at the bottleneck; patch {fitted}.")
        assert fitted is not None  # min_units=1 with an unbounded budget always fits
        return fitted, depth
    for d in range(max_depth, 0, -1):
        fitted = _fit_patch(target, d, budget, min_bottleneck, volume)
        if fitted is not None:
            return fitted, d
    # a volume thinner than 2 * min_bottleneck voxels along some axis, or a tiny budget
    fitted = _fit_patch(target, 1, budget, 1) or _fit_patch(target, 1, 2**62, 1)
    assert fitted is not None
    logger.warning(f"plan: no depth gives every axis >= {min_bottleneck} voxels at the bottleneck within {budget} "
                   f"voxels (median shape at pixdim {_fmt(volume)}); depth 1, patch {fitted}.")
    return fitted, 1


def _depth_for_patch(patch: Sequence[int], max_depth: int, min_bottleneck: int) -> int:
    """Largest ``d <= max_depth`` with every axis divisible by ``2**d`` and ``axis / 2**d >= min_bottleneck``, or 1.

    Divisibility because a U-Net with ``d`` 2x downsamplings needs it (MONAI's DynUNet, this package's U-Nets).
    """
    for d in range(max_depth, 0, -1):
        if all(p % 2**d == 0 and p // 2**d >= min_bottleneck for p in patch):
            return d
    logger.warning(f"plan: the patch {list(patch)} allows no depth with every axis divisible by 2**depth and >= "
                   f"{min_bottleneck} voxels at the bottleneck; depth 1.")
    return 1


def _check_fingerprint(fingerprint: Any) -> None:
    if not isinstance(fingerprint, dict):
        raise ValueError(f"fingerprint must be the dict of dataset_fingerprint, got {type(fingerprint).__name__}.")
    missing = [k for k in _FINGERPRINT_KEYS if k not in fingerprint]
    if missing:
        raise ValueError(f"fingerprint lacks the keys {missing} (expected the dict of dataset_fingerprint, "
                         f"version {FINGERPRINT_VERSION}; got the keys {sorted(fingerprint)}).")
    if fingerprint["version"] != FINGERPRINT_VERSION:
        raise ValueError(f"fingerprint has version {fingerprint['version']!r}, expected {FINGERPRINT_VERSION}.")
    missing = [k for k in _FOREGROUND_KEYS if k not in fingerprint["foreground_intensity"]]
    if missing:
        raise ValueError(f"fingerprint['foreground_intensity'] lacks the keys {missing}.")


def _fmt(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def plan_segmentation(
    fingerprint: dict,
    device: Union[str, torch.device] = "cpu",
    *,
    pixdim: Optional[Union[float, Sequence[float]]] = None,
    patch_size: Optional[Union[int, Sequence[int]]] = None,
    batch_size: Optional[int] = None,
    depth: Optional[int] = None,
    hu_window: Optional[Sequence[float]] = None,
    max_depth: int = 5,
    min_bottleneck: int = 4,
    voxel_budget: Optional[int] = None,
    save_dir: Optional[PathLike] = None,
) -> dict:
    """The training configuration of a dataset on a device, after nnU-Net's rule-based parameters.

    nnU-Net ("nnU-Net: a self-configuring method for deep learning-based biomedical image segmentation") derives
    the target spacing, the intensity normalisation, the patch and batch size and the network topology from the
    dataset fingerprint and the GPU memory.  Our rules (every argument that is not None is an explicit override: it
    is used as given and the other values are derived consistently with it):

    * ``voxel_budget`` (voxels of one training sample): CPU, compute-bound: :data:`CPU_VOXEL_BUDGET`
      = 64 * 64 * 48 = 196,608; CUDA: :func:`gpu_voxel_budget` of
      ``torch.cuda.get_device_properties(i).total_memory``.
    * ``pixdim``: the median spacing (nnU-Net's target spacing for data that is not strongly anisotropic).  On a CPU,
      when the median volume at that spacing has more voxels than the budget, the spacing is coarsened, finest axes
      first, until it fits (:func:`_coarsened_spacing`, nnU-Net's low-resolution idea: a CPU trains on the whole,
      coarser volume).  On a GPU the median spacing is kept and the patch covers part of the volume.
    * ``patch_size``: the median shape at ``pixdim`` (``size_mm_median / pixdim``), scaled down to the budget with its
      aspect ratio kept, each axis rounded up to a multiple of ``2**depth`` (down instead, most over-rounded axis
      first, where rounding up would exceed the budget), and at least ``min_bottleneck * 2**depth``: an axis shorter
      than that is lengthened (never beyond the median shape rounded up) and the other axes shrink together to stay
      within the budget (:func:`_fit_patch`).
    * ``depth`` (number of 2x downsamplings): the largest ``d <= max_depth`` for which such a patch exists, i.e.
      every patch axis / ``2**d`` >= ``min_bottleneck`` within the budget and without padding beyond the median
      volume (nnU-Net pools until the bottleneck is about 4-8 voxels per axis); at least 1 (with a warning when even
      depth 1 misses ``min_bottleneck``: a volume thinner than ``2 * min_bottleneck`` voxels).  With an explicit
      ``patch_size``: the largest ``d <= max_depth`` that divides every axis with ``axis / 2**d >= min_bottleneck``.
      One depth for all axes: the networks of this package pool every axis together (nnU-Net's anisotropic
      pooling, which keeps pooling the fine axes of thick-slice data, is not modelled).
    * ``batch_size``: 2, nnU-Net's minimum, on a CPU (compute-bound: a larger batch only lengthens the step).  On a
      GPU, as many samples as fit in the memory of two budget-sized ones (``floor(2 * budget / prod(patch))``, more
      than 2 only when the patch is smaller than the budget, i.e. whole small volumes), capped like nnU-Net so that a
      batch holds at most 5 % of the voxels of the dataset (``num_cases * prod(size_mm_median / pixdim)``), and at
      least 2.
    * ``hu_window``: ``[percentile_00_5, percentile_99_5]`` of the foreground intensities; ``intensity_mean`` and
      ``intensity_std``: the foreground mean and std (nnU-Net's CT normalisation: clip to the window, then z-score
      with these; they are kept when the window is overridden, as nnU-Net computes them before clipping).

    Args:
        fingerprint: the dict of :func:`dataset_fingerprint`.
        device: the training device (``torch.device`` or string: ``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        pixdim, patch_size, batch_size, depth, hu_window, voxel_budget: explicit overrides (None: derived).
            ``pixdim`` and ``patch_size`` take one value for every axis or one per axis.
        max_depth: the deepest network considered.
        min_bottleneck: the smallest bottleneck size per axis (voxels) the depth and patch rules aim for.
        save_dir: when given, the plan and the fingerprint are written (atomically) to ``save_dir/plan.json``.

    Returns:
        a JSON-serialisable dict: ``pixdim`` (mm, RAS axes), ``hu_window`` ``[low, high]``, ``intensity_mean``,
        ``intensity_std``, ``patch_size`` (voxels at ``pixdim``), ``batch_size``, ``depth``, ``device_type``
        (``"cpu"``/``"cuda"``), ``voxel_budget``, ``derived_from`` (the fingerprint values used, the GPU memory, the
        median shape at ``pixdim``, and the reason of every value under ``"reasons"``), ``overrides`` (the names
        given explicitly) and ``version`` (1).

    Raises:
        ValueError: an invalid fingerprint or argument (the message names it), an unsupported device, CUDA asked
            for on a machine without it (unless ``voxel_budget`` is given), or a ``patch_size`` that ``2**depth``
            does not divide when both are given.
    """
    _check_fingerprint(fingerprint)
    spacing = np.asarray(fingerprint["spacing_median"], dtype=np.float64)
    size_mm = np.asarray(fingerprint["size_mm_median"], dtype=np.float64)
    ndim = len(spacing)
    if ndim == 0 or len(size_mm) != ndim:
        raise ValueError(f"fingerprint spacing_median {fingerprint['spacing_median']} and size_mm_median "
                         f"{fingerprint['size_mm_median']} must have the same, non-zero length.")
    check_numbers(list(spacing), "fingerprint spacing_median", ndim, low=0.0, low_open=True)
    check_numbers(list(size_mm), "fingerprint size_mm_median", ndim, low=0.0, low_open=True)
    max_depth = check_int(max_depth, "max_depth")
    min_bottleneck = check_int(min_bottleneck, "min_bottleneck")
    dev = torch.device(device) if isinstance(device, str) else device
    if not isinstance(dev, torch.device):
        raise ValueError(f"device must be a torch.device or a string such as 'cpu' or 'cuda:0', got {device!r}.")
    try:
        device_type = look_up_option(dev.type, ("cpu", "cuda"))
    except ValueError as err:
        raise ValueError(f"device must be a CPU or CUDA device, got {str(dev)!r}: {err}") from err

    overrides = [name for name, v in (("pixdim", pixdim), ("hu_window", hu_window), ("patch_size", patch_size),
                                      ("batch_size", batch_size), ("depth", depth), ("voxel_budget", voxel_budget))
                 if v is not None]
    reasons: dict[str, str] = {}
    derived: dict[str, Any] = {
        "num_cases": int(fingerprint["num_cases"]),
        "spacing_median": [float(v) for v in spacing],
        "size_mm_median": [float(v) for v in size_mm],
        "foreground_intensity": dict(fingerprint["foreground_intensity"]),
        "fingerprint_hash": fingerprint["source"].get("hash") if isinstance(fingerprint["source"], dict) else None,
    }

    # -- budget: one training sample's voxels
    if voxel_budget is not None:
        budget = check_int(voxel_budget, "voxel_budget")
        reasons["voxel_budget"] = "explicit override"
    elif device_type == "cpu":
        budget = CPU_VOXEL_BUDGET
        reasons["voxel_budget"] = "CPU, compute-bound: fixed 64 x 64 x 48 voxels, about a second per step on 2 cores"
    else:
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(dev)!r} asked for, but torch.cuda.is_available() is False: plan on the "
                             "GPU machine, or pass voxel_budget to plan for a GPU from here.")
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        memory = int(torch.cuda.get_device_properties(index).total_memory)
        budget = gpu_voxel_budget(memory)
        derived["gpu_total_memory_gib"] = memory / 2**30
        reasons["voxel_budget"] = (f"GPU cuda:{index} with {memory / 2**30:.1f} GiB, 128**3 * clip(GiB / 16, 1/8, 2), "
                                   "nnU-Net's class of patch (about 2 M voxels) on 16 GiB")

    # -- target spacing
    if pixdim is not None:
        pix = np.asarray(check_numbers(pixdim, "pixdim", ndim, low=0.0, low_open=True), dtype=np.float64)
        reasons["pixdim"] = "explicit override"
    else:
        pix = spacing.copy()
        whole = float(np.prod(size_mm / pix))
        if device_type == "cpu" and whole > budget:
            pix = np.asarray(_coarsened_spacing(spacing, size_mm, budget))
            reasons["pixdim"] = (f"median spacing {_fmt(spacing)} mm coarsened, finest axes first, so that the "
                                 f"median volume ({whole:,.0f} voxels at the median spacing) fits the CPU budget of "
                                 f"{budget:,}")
        else:
            reasons["pixdim"] = f"median spacing of {derived['num_cases']} cases"
            if whole > budget:
                reasons["pixdim"] += f", kept on the GPU: the patch covers part of the {whole:,.0f}-voxel volume"
    shape_at_pix = size_mm / pix
    derived["shape_at_pixdim"] = [float(v) for v in shape_at_pix]

    # -- patch size and depth
    if depth is not None:
        depth = check_int(depth, "depth")
    if patch_size is not None:
        patch = list(check_ints(patch_size, "patch_size", ndim))
        reasons["patch_size"] = "explicit override"
        if depth is not None:
            bad = [p for p in patch if p % 2**depth]
            if bad:
                raise ValueError(f"patch_size {patch} and depth {depth} disagree: every patch axis must be divisible "
                                 f"by 2**depth = {2**depth}, got the axes {bad}.")
            reasons["depth"] = "explicit override"
        else:
            depth = _depth_for_patch(patch, max_depth, min_bottleneck)
            reasons["depth"] = (f"largest <= {max_depth} dividing every axis of the given patch with axis / 2**depth "
                                f">= {min_bottleneck}")
    else:
        volume = float(np.prod(shape_at_pix))
        target = shape_at_pix * (min(1.0, budget / volume) ** (1.0 / ndim))
        # (a coarsened pixdim makes the volume equal to the budget up to rounding)
        capped = "capped by the budget, aspect ratio kept" if volume > budget * (1 + 1e-9) else "the whole volume"
        patch, depth = _derived_patch(target, shape_at_pix, budget, depth, max_depth, min_bottleneck)
        reasons["depth"] = ("explicit override" if "depth" in overrides else
                            f"largest <= {max_depth} with every patch axis / 2**depth >= {min_bottleneck} within the "
                            "budget")
        reasons["patch_size"] = (f"median shape at pixdim {_fmt(shape_at_pix)}, {capped} {_fmt(target)}, "
                                 f"in multiples of 2**{depth}, within {budget:,} voxels")
    patch_voxels = int(np.prod(patch))

    # -- batch size
    if batch_size is not None:
        batch = check_int(batch_size, "batch_size")
        reasons["batch_size"] = "explicit override"
    elif device_type == "cpu":
        batch = _MIN_BATCH
        reasons["batch_size"] = "nnU-Net's minimum of 2; a CPU is compute-bound, more samples only lengthen a step"
    else:
        by_memory = (2 * budget) // patch_voxels
        dataset_voxels = derived["num_cases"] * float(np.prod(shape_at_pix))
        by_dataset = int(_MAX_BATCH_DATASET_FRACTION * dataset_voxels // patch_voxels)
        batch = max(_MIN_BATCH, min(by_memory, by_dataset))
        reasons["batch_size"] = (f"max(2, min({by_memory}, {by_dataset})): {by_memory} patches fit in the memory of "
                                 f"two budget-sized ones, {by_dataset} patches are 5 % of the dataset's voxels")

    # -- intensities
    fg = fingerprint["foreground_intensity"]
    if hu_window is not None:
        window = list(check_numbers(hu_window, "hu_window", 2))
        if not window[0] < window[1]:
            raise ValueError(f"hu_window must be [low, high] with low < high, got {hu_window!r}.")
        reasons["hu_window"] = "explicit override"
    else:
        window = [float(fg["percentile_00_5"]), float(fg["percentile_99_5"])]
        reasons["hu_window"] = "foreground 0.5 and 99.5 percentiles, averaged over cases"
    mean = check_number(fg["mean"], "fingerprint foreground mean")
    std = check_number(fg["std"], "fingerprint foreground std", low=0.0, low_open=True)
    reasons["intensity_mean"] = "foreground mean, for the z-score after clipping to hu_window"
    reasons["intensity_std"] = "foreground std (equal-weight mixture of the cases), for the z-score after clipping"

    derived["reasons"] = reasons
    plan = {
        "version": 1,
        "pixdim": [float(v) for v in pix],
        "hu_window": [float(v) for v in window],
        "intensity_mean": mean,
        "intensity_std": std,
        "patch_size": [int(v) for v in patch],
        "batch_size": int(batch),
        "depth": int(depth),
        "device_type": device_type,
        "voxel_budget": int(budget),
        "derived_from": derived,
        "overrides": overrides,
    }
    if patch_voxels > budget:
        logger.warning(f"plan: patch {plan['patch_size']} has {patch_voxels} voxels, more than the budget {budget}.")
    for name in ("voxel_budget", "pixdim", "hu_window", "intensity_mean", "intensity_std", "patch_size", "depth",
                 "batch_size"):
        value = plan[name]
        shown = _fmt(value) if isinstance(value, list) else (f"{value:.4g}" if isinstance(value, float) else value)
        logger.info(f"plan: {name} = {shown}: {reasons[name]}.")

    if save_dir is not None:
        folder = Path(os.fspath(save_dir))
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_write_json(folder / PLAN_FILE, {**plan, "fingerprint": fingerprint})
        logger.info(f"plan: written to {str(folder / PLAN_FILE)!r}.")
    return plan


def load_plan(save_dir: PathLike) -> dict:
    """The plan written by :func:`plan_segmentation` to ``save_dir/plan.json`` (with its ``fingerprint``).

    Evaluation and inference configs read it so that they resample, window and tile exactly as the weights were
    trained.

    Raises:
        FileNotFoundError: ``save_dir/plan.json`` does not exist.
        ValueError: it is not valid JSON, not an object, or lacks one of the plan's keys (the message names it).
    """
    path = Path(os.fspath(save_dir)) / PLAN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"plan file {str(path)!r} does not exist: train first (plan_segmentation writes it "
                                "next to the checkpoints) or point to the folder of the trained weights.")
    try:
        plan = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"plan file {str(path)!r} is not valid JSON: {err}.") from err
    if not isinstance(plan, dict):
        raise ValueError(f"plan file {str(path)!r} must hold a JSON object, got {type(plan).__name__}.")
    missing = [k for k in _PLAN_KEYS if k not in plan]
    if missing:
        raise ValueError(f"plan file {str(path)!r} lacks the keys {missing} (expected {list(_PLAN_KEYS)}).")
    _check_plan_values(plan, str(path))
    return plan


def _check_plan_values(plan: dict, source: str) -> None:
    """Refuse values that would make preprocessing silently wrong (a zero std, a reversed window, NaN spacing)."""
    from monai_implicit.utils import check_number

    def fail(key: str, reason: str) -> None:
        raise ValueError(f"plan file {source!r}: {key} {reason}, got {plan[key]!r}.")

    try:
        for key in ("pixdim", "hu_window", "patch_size"):
            if not isinstance(plan[key], (list, tuple)) or not plan[key]:
                fail(key, "must be a non-empty list")
        for v in plan["pixdim"]:
            check_number(v, "pixdim", low=0.0, low_open=True)
        if len(plan["hu_window"]) != 2:
            fail("hu_window", "must be [low, high]")
        low, high = (check_number(v, "hu_window") for v in plan["hu_window"])
        if not low < high:
            fail("hu_window", "must have low < high")
        check_number(plan["intensity_mean"], "intensity_mean")
        check_number(plan["intensity_std"], "intensity_std", low=0.0, low_open=True)
        for key, values, smallest in (("patch_size", plan["patch_size"], 1), ("batch_size", [plan["batch_size"]], 1),
                                      ("depth", [plan["depth"]], 0)):
            check_ints(values, key, low=smallest)
    except (TypeError, ValueError) as err:
        if str(err).startswith(f"plan file {source!r}"):
            raise
        raise ValueError(f"plan file {source!r}: {err}") from err
