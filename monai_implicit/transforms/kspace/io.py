"""Readers and transforms of MR k-space for reconstruction networks at the data's native size.

:class:`LoadKspaced` reads single-coil undersampled k-space + mask files (``<case>_kspace.npy`` + ``<case>_mask.npy``,
or fastMRI-style HDF5 with ``kspace`` and ``mask`` datasets), :class:`ZeroFilledKspaced` gives a zero-filled magnitude
image the k-space samples data consistency keeps, and :class:`ScaleByMaxd` scales an input to the [0, 1] range the
network was trained on and back (invertible).  The k-space convention is the centred orthonormal FFT of
:class:`~monai_implicit.transforms.RetrospectiveUndersampled` (the CS-MRI experiment of "Hyper-Convolutions via
Implicit Kernels for Medical Imaging", Ma et al., Sec. 4.3).
"""

from __future__ import annotations

import math
import os
from collections.abc import Hashable, Mapping
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from monai.config import KeysCollection, PathLike
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, MapTransform
from monai.utils import TraceKeys
from monai.utils.type_conversion import convert_to_dst_type

from monai_implicit.transforms.checks import CheckedLoadImage, check_finite
from monai_implicit.transforms.kspace.fft import image_to_kspace, kspace_to_image

__all__ = [
    "KSPACE_SUFFIX",
    "MASK_SUFFIX",
    "read_kspace_file",
    "read_mask_file",
    "LoadKspaced",
    "LoadKspaceD",
    "LoadKspaceDict",
    "ZeroFilledKspaced",
    "ZeroFilledKspaceD",
    "ZeroFilledKspaceDict",
    "ScaleByMaxd",
    "ScaleByMaxD",
    "ScaleByMaxDict",
]

#: file naming of single-coil k-space in numpy format: ``<case>_kspace.npy`` (complex) + ``<case>_mask.npy``
KSPACE_SUFFIX = "_kspace.npy"
MASK_SUFFIX = "_mask.npy"
HDF5_SUFFIXES = (".h5", ".hdf5")


def _load_npy(path: str, what: str) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as e:  # pickled objects, truncated or foreign files
        raise ValueError(f"cannot read {what} {path!r} as a .npy array: {type(e).__name__}: {e}") from e
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{what} {path!r} is not a single .npy array (an .npz archive?).")
    return array


def _read_hdf5(path: str) -> dict:
    """The datasets and attributes of an HDF5 file (MONAI's ``FastMRIReader``; h5py is an optional dependency)."""
    from monai.apps.reconstruction.fastmri_reader import FastMRIReader
    from monai.utils import OptionalImportError

    try:
        reader = FastMRIReader()
    except OptionalImportError as e:
        raise OptionalImportError(
            f"reading the HDF5 k-space file {path!r} needs the optional package 'h5py' (pip install h5py): {e}"
        ) from e
    try:
        return reader.read(path)
    except Exception as e:
        raise ValueError(f"cannot read HDF5 file {path!r}: {type(e).__name__}: {e}") from e


def _check_kspace(array: Any, source: str) -> np.ndarray:
    """Single-coil k-space of one slice as complex64 ``(H, W)``; errors name ``source`` (the file, and the dataset)."""
    name = repr(source)
    array = np.asarray(array)
    if not np.iscomplexobj(array):
        raise ValueError(
            f"k-space {name} must be a complex array (complex64 / complex128, single-coil, centred), got dtype "
            f"{array.dtype}."
        )
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or min(array.shape) < 2:
        raise ValueError(
            f"k-space {name} must be one 2D slice (H, W) or (1, H, W), got shape {array.shape}; write multi-slice or "
            "multi-coil data as one coil-combined slice per file."
        )
    check_finite(array, name=source, what="k-space")
    return array.astype(np.complex64)


def _check_mask(array: Any, shape: tuple, source: str) -> np.ndarray:
    """A sampling mask as float32 0/1 ``shape``: ``shape``, ``(1, *shape)`` or a 1D column mask of length
    ``shape[-1]`` (fastMRI), 0/1 or boolean, sampling something; errors name ``source``."""
    name = repr(source)
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"mask {name} must hold boolean or real 0/1 values, got dtype {array.dtype}.")
    if array.ndim == len(shape) + 1 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 1 and len(shape) == 2 and array.shape[0] == shape[1]:
        array = np.broadcast_to(array[None], shape)  # fastMRI: one value per phase-encode column
    if tuple(array.shape) != tuple(shape):
        raise ValueError(
            f"mask {name} has shape {tuple(array.shape)}; it must match the grid {tuple(shape)} of the data (or be a "
            f"1D column mask of length {shape[-1]})."
        )
    array = np.array(array, dtype=np.float32)  # a writable copy (broadcast columns and HDF5 data may be read-only)
    check_finite(array, name=source, what="mask")
    if not np.isin(array, (0, 1)).all():
        bad = array[~np.isin(array, (0, 1))]
        raise ValueError(f"mask {name} must hold only 0 and 1, got {bad.size} other value(s), e.g. {bad.flat[0]!r}.")
    if not array.any():
        raise ValueError(f"mask {name} samples nothing (all zeros).")
    return array


def _check_affine(array: Any, source: str) -> np.ndarray:
    affine = np.array(array, dtype=np.float64)
    if affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise ValueError(f"affine {source!r} must be a finite 4x4 matrix, got shape {affine.shape}.")
    return affine


def read_kspace_file(path: PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Single-coil undersampled k-space of one 2D slice, its sampling mask and the affine of its image grid.

    Formats:

    * ``<case>_kspace.npy``: complex ``(H, W)`` (or ``(1, H, W)``) with its mask in ``<case>_mask.npy`` next to it
      (0/1 or boolean ``(H, W)``, or a 1D column mask of length ``W``); the affine is the identity.
    * ``.h5`` / ``.hdf5`` (fastMRI style, read with MONAI's ``FastMRIReader``; needs the optional package h5py):
      datasets ``kspace`` (complex ``(H, W)`` or ``(1, H, W)``) and ``mask`` (as above; fastMRI's 1D column masks
      included), and optionally ``affine`` (4x4, the image grid's voxel-to-world matrix; identity without it).

    The k-space is centred (DC at index ``n // 2``) with the orthonormal FFT convention of
    :class:`~monai_implicit.transforms.RetrospectiveUndersampled` (fastMRI's ``fft2c`` convention); its values where the
    mask is 0 are ignored.

    Returns:
        ``(kspace complex64 (H, W), mask float32 (H, W), affine float64 (4, 4))``.

    Raises:
        FileNotFoundError: the file (or the ``_mask.npy`` beside it) does not exist.
        ValueError: unknown file naming, unreadable file, missing dataset, k-space not complex or not one 2D slice,
            non-finite values, mask of another shape or not 0/1, bad affine (each message names the file).
        OptionalImportError: an HDF5 file without h5py installed (the message names the package and the file).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"k-space file {path!r} does not exist.")
    lower = path.lower()
    affine = np.eye(4)
    if lower.endswith(HDF5_SUFFIXES):
        data = _read_hdf5(path)
        for key in ("kspace", "mask"):
            if key not in data:
                found = sorted(k for k in data if k != "filename")
                raise ValueError(
                    f"HDF5 file {path!r} has no {key!r} dataset (fastMRI-style single-coil layout: 'kspace' complex "
                    f"(H, W) and 'mask'); it holds {found}."
                )
        kspace = _check_kspace(data["kspace"], f"{path}, dataset 'kspace'")
        mask = _check_mask(data["mask"], kspace.shape, f"{path}, dataset 'mask'")
        if "affine" in data:
            affine = _check_affine(data["affine"], f"{path}, dataset 'affine'")
    elif lower.endswith(KSPACE_SUFFIX):
        mask_path = path[: -len(KSPACE_SUFFIX)] + MASK_SUFFIX
        if not os.path.isfile(mask_path):
            raise FileNotFoundError(
                f"the mask of k-space file {path!r} must be in {mask_path!r} (naming: <case>{KSPACE_SUFFIX} + "
                f"<case>{MASK_SUFFIX}), which does not exist."
            )
        kspace = _check_kspace(_load_npy(path, "k-space file"), path)
        mask = _check_mask(_load_npy(mask_path, "mask file"), kspace.shape, mask_path)
    else:
        raise ValueError(
            f"k-space file {path!r}: expected <case>{KSPACE_SUFFIX} (with <case>{MASK_SUFFIX} beside it) or a "
            f"fastMRI-style HDF5 file ({', '.join(HDF5_SUFFIXES)})."
        )
    return kspace, mask, affine


def read_mask_file(path: PathLike, spatial_shape: Sequence[int]) -> np.ndarray:
    """A 0/1 sampling mask of ``spatial_shape`` from a ``.npy`` file or an image file (NIfTI...) MONAI reads.

    Returns float32 ``spatial_shape``; raises FileNotFoundError / ValueError naming the file (unreadable, other
    shape, values other than 0/1, non-finite, nothing sampled)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"mask file {path!r} does not exist.")
    if path.lower().endswith(".npy"):
        array = _load_npy(path, "mask file")
    else:
        array = np.asarray(CheckedLoadImage(image_only=True)(path))
    return _check_mask(array, tuple(int(s) for s in spatial_shape), path)


class LoadKspaced(MapTransform):
    """Load single-coil undersampled k-space + mask files (:func:`read_kspace_file`) for the reconstruction network.

    ``d[keys]`` holds the path of a ``<case>_kspace.npy`` or ``.h5`` file; the transform writes

    * ``d[key]``: the zero-filled magnitude image ``|F^-1(kspace * mask)|`` ``(1, H, W)`` float32, a MetaTensor on the
      k-space's image grid (affine from the file, else the identity; ``filename_or_obj`` = the k-space file, so
      outputs are named after it),
    * ``d[kspace_key]``: the measured k-space ``kspace * mask`` ``(1, H, W)`` complex64,
    * ``d[mask_key]``: the mask ``(1, H, W)`` float32 0/1.

    ``F`` is the centred orthonormal FFT of :class:`~monai_implicit.transforms.RetrospectiveUndersampled`.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        kspace_key: str = "kspace",
        mask_key: str = "mask",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 1:
            raise ValueError(f"LoadKspaced reads exactly one key (its outputs have fixed names), got {self.keys}.")
        self.kspace_key = kspace_key
        self.mask_key = mask_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            path = d[key]
            if not isinstance(path, (str, os.PathLike)):
                raise TypeError(f"LoadKspaced expects a k-space file path in {key!r}, got {type(path).__name__}.")
            kspace, mask, affine = read_kspace_file(path)
            m = torch.from_numpy(mask)[None]
            k = torch.from_numpy(kspace)[None] * m
            meta = {
                "filename_or_obj": os.fspath(path),
                "original_affine": affine,
                "spatial_shape": np.asarray(kspace.shape),
                "space": "RAS",
                "original_channel_dim": float("nan"),
            }
            affine_t = torch.as_tensor(affine, dtype=torch.float64)
            d[key] = MetaTensor(kspace_to_image(k).abs(), affine=affine_t, meta=dict(meta))
            d[self.kspace_key] = MetaTensor(k, affine=affine_t, meta=dict(meta))
            d[self.mask_key] = MetaTensor(m, affine=affine_t, meta=dict(meta))
        return d


class ZeroFilledKspaced(MapTransform):
    """The k-space samples that data consistency keeps for a zero-filled *magnitude* image.

    Writes ``d[kspace_key] = F(d[key]) * mask`` and ``d[mask_key] = mask`` ``(1, *S)``, with ``mask`` read from
    ``mask_file`` (:func:`read_mask_file`; its shape must be the image's) or, without one, ``masker(d[key])`` (the
    bundle's own mask at the image's size, e.g. :class:`~monai_implicit.transforms.UndersamplingMask`).

    A magnitude image has lost the phase of the complex zero-filled image, so these are *not* the acquired samples:
    ``F(|x|)`` differs from ``F(x)`` wherever the aliasing made ``x`` negative or complex.  Data consistency with them
    keeps the reconstruction consistent with the input image's own sampled frequencies (contrast and intensity stay
    those of the input) but cannot enforce the acquisition; only complex k-space (:class:`LoadKspaced`) gives exact
    data consistency.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        kspace_key: str = "kspace",
        mask_key: str = "mask",
        mask_file: Optional[PathLike] = None,
        masker: Optional[Callable[[Any], Any]] = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if len(self.keys) != 1:
            raise ValueError(f"ZeroFilledKspaced reads exactly one key, got {self.keys}.")
        if mask_file is None and masker is None:
            raise ValueError("ZeroFilledKspaced needs a mask_file or a masker (the mask the image was sampled with).")
        if masker is not None and not callable(masker):
            raise TypeError(f"masker must be callable, got {type(masker).__name__}.")
        self.kspace_key = kspace_key
        self.mask_key = mask_key
        self.mask_file = mask_file
        self.masker = masker

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            plain = torch.as_tensor(image).float()
            if plain.ndim not in (3, 4) or plain.shape[0] != 1:
                raise ValueError(f"{key!r} must be one channel-first image (1, *spatial), got {tuple(plain.shape)}.")
            if self.mask_file is not None:
                mask = torch.from_numpy(read_mask_file(self.mask_file, plain.shape[1:]))[None]
            else:
                mask = torch.as_tensor(self.masker(image)).float()  # type: ignore[misc]
            kspace = image_to_kspace(plain) * mask
            d[self.kspace_key], *_ = convert_to_dst_type(kspace, dst=image, dtype=kspace.dtype)
            d[self.mask_key], *_ = convert_to_dst_type(mask, dst=image, dtype=mask.dtype)
        return d


class ScaleByMaxd(MapTransform, InvertibleTransform):
    """Divide ``d[keys]`` by the maximum magnitude of ``d[ref_key]``; the inverse multiplies back.

    The reconstruction network was trained on images scaled to [0, 1]; at inference the zero-filled magnitude image
    (``ref_key``) is scaled to maximum 1 and the measured k-space by the same factor (the FFT is linear, so data
    consistency is unchanged), and ``Invertd`` on the prediction restores the input's intensity units.

    Raises:
        ValueError: the reference image is all zero or not finite (the message names its file).
    """

    def __init__(
        self, keys: KeysCollection = ("image", "kspace"), ref_key: str = "image", allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.ref_key = ref_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if self.ref_key not in d:
            raise KeyError(f"ScaleByMaxd: ref_key {self.ref_key!r} is not in the data (keys {list(d)}).")
        scale = float(torch.as_tensor(d[self.ref_key]).abs().max())
        if not math.isfinite(scale) or scale <= 0:
            name = getattr(d[self.ref_key], "meta", {}).get("filename_or_obj", self.ref_key)
            raise ValueError(f"cannot scale {name!r} to [0, 1]: its zero-filled image has maximum {scale} (no signal).")
        for key in self.key_iterator(d):
            d[key] = d[key] / scale
            self.push_transform(d[key], extra_info={"scale": scale})
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            scale = self.pop_transform(d[key])[TraceKeys.EXTRA_INFO]["scale"]
            d[key] = d[key] * scale
        return d


LoadKspaceD = LoadKspaceDict = LoadKspaced
ZeroFilledKspaceD = ZeroFilledKspaceDict = ZeroFilledKspaced
ScaleByMaxD = ScaleByMaxDict = ScaleByMaxd
