"""Data checks that turn silently wrong results into errors naming the file: non-finite voxels, unreadable image
bodies and image/label grid mismatches.

* One NaN voxel makes every logit it reaches NaN, and ``argmax`` of NaN logits is class 0: a whole predicted
  volume becomes background without an error.  :class:`CheckFinite` / :class:`CheckFinited` refuse such images,
  naming the file and the number of non-finite voxels (policy: refuse, never replace; repair the data, e.g. with
  ``numpy.nan_to_num``, if replacing is right for it).
* A truncated ``.nii.gz`` has a readable header, so it passes header checks, and its body fails inside
  ``LoadImage`` with an ``EOFError`` that names no file.  :class:`CheckedLoadImage` / :class:`CheckedLoadImaged`
  (drop-in replacements of MONAI's ``LoadImage`` / ``LoadImaged``) re-raise read errors as :class:`ImageReadError`
  naming the file, and check finiteness right after reading.
* A label on another grid than its image (other shape or affine) trains to completion, misaligned.
  :func:`check_same_grid` (used on the NIfTI headers by :func:`monai_implicit.data.load_datalist`) and
  :class:`CheckSameGridd` (on loaded MetaTensors) refuse it, naming both files.
* A label map with an unexpected class silently corrupts one-hot encoding and the loss: :class:`CheckLabelValuesd`
  refuses it, naming the file and the values.

Transforms return their input unchanged; MONAI conventions (array and dictionary versions, ``D`` / ``Dict``
aliases).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Optional, Union

import numpy as np
import torch
from monai.config import KeysCollection, PathLike
from monai.data import MetaTensor
from monai.data.utils import AFFINE_TOL
from monai.transforms import LoadImage, LoadImaged, MapTransform, Transform
from monai.utils import ensure_tuple

from monai_implicit.utils import check_number

__all__ = [
    "NonFiniteImageError",
    "ImageReadError",
    "GridMismatchError",
    "nonfinite_counts",
    "check_finite",
    "check_same_grid",
    "CheckFinite",
    "CheckFinited",
    "CheckFiniteD",
    "CheckFiniteDict",
    "CheckedLoadImage",
    "CheckedLoadImaged",
    "CheckedLoadImageD",
    "CheckedLoadImageDict",
    "CheckSameGridd",
    "CheckSameGridD",
    "CheckSameGridDict",
    "CheckLabelValuesd",
    "CheckLabelValuesD",
    "CheckLabelValuesDict",
]


class NonFiniteImageError(ValueError):
    """An image holds NaN or infinite voxels (the message names the image and the count)."""


class ImageReadError(ValueError):
    """An image file exists but cannot be read (truncated, corrupt, not an image; the message names the file)."""


class GridMismatchError(ValueError):
    """Two images that must share a voxel grid (image and label) differ in shape or affine (both are named)."""


def _source(value: Any, default: str = "<in-memory data>") -> str:
    """The file a loaded image came from (MetaTensor ``filename_or_obj``), else ``default``."""
    meta = getattr(value, "meta", None)
    name = meta.get("filename_or_obj") if isinstance(meta, Mapping) else None
    if isinstance(name, (list, tuple)):
        name = ", ".join(str(n) for n in name)
    return str(name) if name else default


def nonfinite_counts(data: Any) -> tuple[int, int, int]:
    """``(n_nan, n_inf, n_total)`` of an array or tensor (integer and bool data: no non-finite values)."""
    t = data.as_tensor() if isinstance(data, MetaTensor) else torch.as_tensor(data)
    if not (t.is_floating_point() or t.is_complex()):
        return 0, 0, t.numel()
    finite = torch.isfinite(t)
    if bool(finite.all()):  # the common case costs one pass
        return 0, 0, t.numel()
    n_nan = int(torch.isnan(t).sum())
    return n_nan, int((~finite).sum()) - n_nan, t.numel()


def check_finite(data: Any, name: Optional[str] = None, what: str = "image") -> None:
    """Raise :class:`NonFiniteImageError` if ``data`` has NaN or infinite values.

    Args:
        data: array or tensor of any shape.
        name: how to name the data (default: its MetaTensor file name, else ``"<in-memory data>"``).
        what: what the data is (``"image"``, ``"label"``...), for the message.
    """
    n_nan, n_inf, total = nonfinite_counts(data)
    if n_nan or n_inf:
        raise NonFiniteImageError(
            f"{what} {name or _source(data)!r} has {n_nan + n_inf} non-finite voxel(s) ({n_nan} NaN, {n_inf} inf) "
            f"among {total}: they make the network output NaN (a prediction then collapses to one class); repair "
            "the data (e.g. numpy.nan_to_num, if a replacement value is right for it) or leave those voxels out."
        )


def check_same_grid(
    shape_a: Sequence[int],
    affine_a: Optional[Any],
    name_a: str,
    shape_b: Sequence[int],
    affine_b: Optional[Any],
    name_b: str,
    atol: float = AFFINE_TOL,
) -> None:
    """Raise :class:`GridMismatchError`, naming both files, unless two images share their voxel grid.

    Args:
        shape_a, shape_b: spatial shapes (no channel axis).
        affine_a, affine_b: voxel-to-world matrices (``(4, 4)``, any array type), or None to compare shapes only.
        name_a, name_b: the files (or keys) named in the message.
        atol: largest admissible absolute difference of any affine entry (mm for the translation; MONAI's
            ``AFFINE_TOL`` by default, the tolerance its resampling uses to call two grids equal).
    """
    atol = check_number(atol, "atol", low=0.0)
    sa, sb = tuple(int(s) for s in shape_a), tuple(int(s) for s in shape_b)
    if sa != sb:
        raise GridMismatchError(
            f"{name_a!r} has spatial shape {sa} but {name_b!r} has {sb}: an image and its label must share one voxel "
            "grid (resample the label onto the image grid first)."
        )
    if affine_a is None or affine_b is None:
        return
    a = np.asarray(affine_a.detach().cpu() if isinstance(affine_a, torch.Tensor) else affine_a, dtype=np.float64)
    b = np.asarray(affine_b.detach().cpu() if isinstance(affine_b, torch.Tensor) else affine_b, dtype=np.float64)
    if a.shape != b.shape or not np.allclose(a, b, rtol=0.0, atol=atol):
        diff = float(np.max(np.abs(a - b))) if a.shape == b.shape else float("inf")
        raise GridMismatchError(
            f"{name_a!r} and {name_b!r} have the same shape {sa} but different affines (largest difference "
            f"{diff:.4g} > atol={atol:g}):\n{np.array2string(a, precision=4)}\nvs\n{np.array2string(b, precision=4)}\n"
            "an image and its label must share one voxel grid (resample the label onto the image grid first)."
        )


class CheckFinite(Transform):
    """Raise :class:`NonFiniteImageError` naming the image and the count when it has NaN or infinite voxels.

    Args:
        name: how to name the image in the message (default: the MetaTensor's ``filename_or_obj``).

    ``__call__(img)``: any array or tensor; returns ``img`` unchanged.
    """

    def __init__(self, name: Optional[str] = None) -> None:
        self.name = name

    def __call__(self, img: Any) -> Any:
        check_finite(img, self.name)
        return img


class CheckFinited(MapTransform):
    """Dictionary version of :class:`CheckFinite`: every key is checked; the message names the key and its file.

    Args:
        keys: keys to check (e.g. ``["image", "label"]``).
        allow_missing_keys: do not raise if a key is absent.
    """

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            meta = d.get(f"{key}_meta_dict", {})
            default = str(meta.get("filename_or_obj", "<in-memory data>")) if isinstance(meta, Mapping) else None
            check_finite(d[key], _source(d[key], default or "<in-memory data>"), what=str(key))
        return d


class CheckedLoadImage(LoadImage):
    """MONAI's ``LoadImage`` whose errors name the file, and which refuses non-finite voxels.

    A file that does not exist raises ``FileNotFoundError``; any error of the readers (a truncated ``.nii.gz``
    raises a bare ``EOFError``, a damaged ``.nii`` an ``OSError``) becomes :class:`ImageReadError` naming the file,
    with the reader's error as its cause; NaN or infinite voxels raise :class:`NonFiniteImageError` (unless
    ``check_finite=False``).

    Args:
        reader, image_only, dtype, ensure_channel_first, simple_keys, prune_meta_pattern, prune_meta_sep,
            expanduser, args, kwargs: as ``monai.transforms.LoadImage``.
        check_finite: refuse images with NaN or infinite voxels.

    ``__call__(filename, reader=None)``: as ``LoadImage``.
    """

    def __init__(self, *args: Any, check_finite: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.check_finite = bool(check_finite)

    def __call__(self, filename: Union[Sequence[PathLike], PathLike], reader: Any = None) -> Any:
        files = ensure_tuple(filename)
        name = ", ".join(str(f) for f in files)
        for f in files:
            path = os.path.expanduser(f) if self.expanduser and isinstance(f, (str, os.PathLike)) else f
            if isinstance(path, (str, os.PathLike)) and not os.path.exists(path):
                raise FileNotFoundError(f"image {str(f)!r} does not exist.")
        try:
            out = super().__call__(filename, reader)
        except Exception as e:
            raise ImageReadError(f"cannot read image {name!r}: {type(e).__name__}: {e}") from e
        if self.check_finite:
            check_finite(out if self.image_only else out[0], name)
        return out


class CheckedLoadImaged(LoadImaged):
    """MONAI's ``LoadImaged`` with the checks of :class:`CheckedLoadImage` (errors name the file; non-finite
    voxels refused).  Arguments as ``monai.transforms.LoadImaged``, plus ``check_finite`` (default True).
    """

    def __init__(
        self,
        keys: KeysCollection,
        reader: Any = None,
        dtype: Any = np.float32,
        meta_keys: Optional[KeysCollection] = None,
        meta_key_postfix: str = "meta_dict",
        overwriting: bool = False,
        image_only: bool = True,
        ensure_channel_first: bool = False,
        simple_keys: bool = False,
        prune_meta_pattern: Optional[str] = None,
        prune_meta_sep: str = ".",
        allow_missing_keys: bool = False,
        expanduser: bool = True,
        *args: Any,
        check_finite: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            keys, reader, dtype, meta_keys, meta_key_postfix, overwriting, image_only, ensure_channel_first,
            simple_keys, prune_meta_pattern, prune_meta_sep, allow_missing_keys, expanduser, *args, **kwargs,
        )
        # the same loader LoadImaged builds, with the checks
        self._loader = CheckedLoadImage(
            reader, image_only, dtype, ensure_channel_first, simple_keys, prune_meta_pattern, prune_meta_sep,
            expanduser, *args, check_finite=check_finite, **kwargs,
        )


class CheckSameGridd(MapTransform):
    """Raise :class:`GridMismatchError`, naming both files, unless all ``keys`` share one voxel grid.

    Compares the spatial shape (channel-first data: ``shape[1:]``) and, for MetaTensors, the affine of every key
    with those of the first key, within ``atol`` (see :func:`check_same_grid`).  Place it right after loading,
    before any spatial transform resamples the images by their own affines.

    Args:
        keys: keys that must share a grid, e.g. ``["image", "label"]``.
        atol: largest admissible absolute difference of any affine entry (default MONAI's ``AFFINE_TOL``).
        allow_missing_keys: do not raise if a key is absent.
    """

    def __init__(self, keys: KeysCollection, atol: float = AFFINE_TOL, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.atol = check_number(atol, "atol", low=0.0)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        ref_key: Optional[Hashable] = None
        for key in self.key_iterator(d):
            if ref_key is None:
                ref_key = key
                continue
            ref, other = d[ref_key], d[key]
            check_same_grid(
                tuple(ref.shape[1:]), getattr(ref, "affine", None), _source(ref, str(ref_key)),
                tuple(other.shape[1:]), getattr(other, "affine", None), _source(other, str(key)), self.atol,
            )
        return d


class CheckLabelValuesd(MapTransform):
    """Raise a ValueError naming the file when a label holds values outside ``allowed`` (MONAI dictionary transform).

    A label map with an unexpected class (e.g. a dataset with a separate vessel label, or a probability map saved
    as a label) would otherwise silently corrupt one-hot encoding and the loss.  Place it right after loading.

    Args:
        keys: label keys; each value is a tensor / array of any shape (MetaTensor: its ``filename_or_obj`` is used
            in the message).
        allowed: the admissible label values (``(0, 1, 2)`` for background / liver / tumour).
        allow_missing_keys: do not raise if a key is absent.

    Returns the data unchanged.
    """

    def __init__(self, keys: KeysCollection, allowed: Sequence[int], allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(allowed) == 0:
            raise ValueError("allowed must list at least one label value.")
        self.allowed = tuple(sorted(float(a) for a in allowed))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            value = d[key]
            values = torch.unique(torch.as_tensor(value)) if isinstance(value, torch.Tensor) else np.unique(value)
            values = [float(v) for v in values]
            unexpected = [v for v in values if v not in self.allowed]
            if unexpected:
                name = getattr(value, "meta", {}).get("filename_or_obj", None) or d.get(f"{key}_meta_dict", {}).get(
                    "filename_or_obj", "<in memory>"
                )
                raise ValueError(
                    f"{key} {name!r} has values {unexpected[:10]} outside the expected classes {list(self.allowed)}."
                )
        return d


CheckFiniteD = CheckFiniteDict = CheckFinited
CheckedLoadImageD = CheckedLoadImageDict = CheckedLoadImaged
CheckSameGridD = CheckSameGridDict = CheckSameGridd
CheckLabelValuesD = CheckLabelValuesDict = CheckLabelValuesd
