"""MONAI Label infer task serving a segmentation bundle through :func:`monai_implicit.bundles.load`.

The task uses the bundle's ``configs/inference.json`` (network, preprocessing, sliding-window inferer) and
``models/model.pt`` through the package's predictor, which bakes the implicit convolutions into plain ones and
returns the label map in the input's own voxel grid.  It needs neither torchvision nor MONAI Label's bundle
helpers, and never downloads anything.

Limits (what a client can make the server do):

* inputs are checked from their header before the volume is read: at most ``max_voxels`` voxel values per image
  file (all channels), else :class:`InputTooLargeError` (the app answers HTTP 413);
* a bundle whose network takes several channels (e.g. ``nerdunet_wmh``: T1 + FLAIR) needs every channel: one file
  with that many channels, or the companion files the app finds in the datastore (``<id>_<channel name>``), else
  :class:`MissingModalityError` (HTTP 422) saying what is needed;
* the loaded predictor is kept per device in a small LRU cache (``cache_size`` devices; ``"cuda"`` and
  ``"cuda:0"`` are one device) and reloaded when the checkpoint file changes (e.g. after training).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from cachetools import LRUCache
from monai.config import PathLike
from monai.data import MetaTensor, NibabelWriter
from monai.utils import look_up_option
from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType
from monailabel.utils.others.generic import device_list, file_checksum, name_to_device

from monai_implicit_label.bundles import SegmentationBundle

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_MAX_VOXELS",
    "BundleSegmentationInfer",
    "InferInputError",
    "InputTooLargeError",
    "MissingModalityError",
    "image_shape",
    "normalize_device",
]

logger = logging.getLogger(__name__)

#: default largest input: voxel values per image file (all channels), a 512 x 512 x 1024 CT volume
DEFAULT_MAX_VOXELS = 512 * 512 * 1024
#: default number of devices whose predictor stays loaded
DEFAULT_CACHE_SIZE = 2


class InferInputError(ValueError):
    """The request's input cannot be segmented; ``status_code`` is the HTTP status the app answers with."""

    status_code = 422


class InputTooLargeError(InferInputError):
    """An input image has more voxels than the task's ``max_voxels`` (HTTP 413, Content Too Large)."""

    status_code = 413


class MissingModalityError(InferInputError):
    """A multi-channel bundle was given fewer modalities than its network takes (HTTP 422)."""

    status_code = 422


def normalize_device(device: Union[str, torch.device]) -> torch.device:
    """The device a predictor runs on, in one spelling: ``"cuda"`` -> ``cuda:<current>``, ``"cpu:0"`` -> ``cpu``.

    Raises:
        ValueError: not a CPU or CUDA device, CUDA is not available, or the GPU index does not exist.
    """
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}.") from None
    if parsed.type == "cpu":
        return torch.device("cpu")
    if parsed.type != "cuda":
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}.")
    if not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested, but CUDA is not available on the server.")
    index = torch.cuda.current_device() if parsed.index is None else parsed.index
    if index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} does not exist: the server has {torch.cuda.device_count()} GPU(s).")
    return torch.device("cuda", index)


def image_shape(path: PathLike) -> tuple[tuple[int, ...], int]:
    """Array shape and number of components of an image file, read from its header only.

    NIfTI and the other formats nibabel reads are opened lazily (nibabel reads the header, not the voxels), as MONAI's
    default NIfTI reader does; other formats (NRRD, MHA, ...) through SimpleITK's ``ReadImageInformation``.

    Returns:
        ``(shape, components)``: the stored array shape (e.g. ``(X, Y, Z)`` or ``(X, Y, Z, C)`` for a 4D NIfTI) and
        the number of components per voxel (1 for scalar images; the vector length of an RGB or vector image).

    Raises:
        InferInputError: neither reader can read the header.
    """
    import nibabel as nib

    try:
        header = nib.load(os.fspath(path)).header
        return tuple(int(n) for n in header.get_data_shape()), 1
    except nib.filebasedimages.ImageFileError:
        pass  # not a format nibabel knows: ask SimpleITK
    except (OSError, EOFError, ValueError) as e:  # a truncated or corrupt file of a format nibabel knows
        raise InferInputError(f"cannot read the image header of {Path(path).name!r}: {e}") from None
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(os.fspath(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise InferInputError(f"cannot read the image header of {Path(path).name!r}: not a supported image.") from None
    return tuple(int(n) for n in reader.GetSize()), int(reader.GetNumberOfComponents())


class BundleSegmentationInfer(InferTask):
    """Segmentation with a bundle: ``request["image"]`` (a NIfTI path) -> a NIfTI label map of the same shape.

    Args:
        bundle: the served bundle (label names from its ``channel_def``).
        result_extension: extension of the written label file.
        max_voxels: largest accepted image file, in voxel values (all channels); checked from the header.
        cache_size: number of devices whose loaded predictor is kept (least recently used dropped first).

    Request keys: ``image`` (a path the app resolved from the datastore, or an uploaded file, or a
    ``(*spatial)`` / ``(C, *spatial)`` array in-process), ``image_channels`` (the paths of the other modalities of a
    multi-channel bundle, in channel order, set by the app), ``image_id`` (for messages), ``device``.

    The result JSON holds ``label_names`` (name -> label value, what 3D Slicer and OHIF use to name segments),
    ``latencies`` (seconds) and ``checkpoint`` (path, SHA256 checksum and modification time of the weights used).
    """

    def __init__(
        self,
        bundle: SegmentationBundle,
        result_extension: str = ".nii.gz",
        max_voxels: int = DEFAULT_MAX_VOXELS,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if not isinstance(bundle, SegmentationBundle):
            raise TypeError(f"bundle must be a SegmentationBundle, got {type(bundle).__name__}.")
        result_extension = look_up_option(result_extension, (".nii", ".nii.gz"))
        for name, value in (("max_voxels", max_voxels), ("cache_size", cache_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        super().__init__(
            type=InferType.SEGMENTATION,
            labels=dict(bundle.labels),
            dimension=bundle.spatial_dims,
            description=bundle.description,
            config={"device": device_list()},
        )
        self.bundle = bundle
        self.result_extension = result_extension
        self.max_voxels = max_voxels
        self._lock = threading.Lock()
        # device -> ((checkpoint mtime, size), predictor): a client choosing devices cannot grow it past cache_size
        self._predictors: LRUCache = LRUCache(maxsize=cache_size)

    def is_valid(self) -> bool:
        """Served (listed by ``/info/``) only once the bundle has trained weights."""
        return self.bundle.checkpoint.is_file()

    def get_path(self, validate: bool = True) -> Optional[str]:
        path = self.bundle.checkpoint
        return str(path) if path.is_file() or not validate else None

    @property
    def cached_devices(self) -> list[str]:
        """The devices with a loaded predictor, least recently used first."""
        with self._lock:
            return [str(d) for d in self._predictors]

    def predictor(self, device: Union[str, torch.device]) -> Any:
        """The bundle's predictor on ``device``, reloaded when ``models/model.pt`` has changed on disk.

        Raises:
            ValueError: ``device`` is not an available CPU or CUDA device (see :func:`normalize_device`).
            FileNotFoundError: the bundle has no trained weights.
        """
        from monai_implicit.bundles import load

        key = normalize_device(device)
        checkpoint = self.bundle.checkpoint
        if not checkpoint.is_file():
            raise FileNotFoundError(f"model {self.bundle.name!r} has no trained weights ({checkpoint}).")
        stat = checkpoint.stat()
        version = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._predictors.get(key)
            if cached is None or cached[0] != version:
                logger.info(f"loading {self.bundle.name} from {checkpoint} on {key}")
                self._predictors[key] = (version, load(self.bundle.root, device=key))
            return self._predictors[key][1]

    def companion_ids(self, image_id: str) -> list[str]:
        """Datastore ids of the other modalities of ``image_id``: ``<image_id>_<channel name>`` for channels 1...

        E.g. ``["sub01_FLAIR"]`` for ``"sub01"`` when the bundle's input ``channel_def`` is ``{0: T1, 1: FLAIR}``;
        empty for a single-channel bundle.
        """
        return [f"{image_id}_{name}" for name in self.bundle.input_channels[1:]]

    def _check_size(self, path: str) -> tuple[tuple[int, ...], int]:
        shape, components = image_shape(path)
        voxels = math.prod(shape) * components
        if voxels > self.max_voxels:
            raise InputTooLargeError(
                f"image {Path(path).name!r} has {voxels} voxel values (shape {shape}"
                f"{f' x {components} components' if components > 1 else ''}); the server accepts at most "
                f"{self.max_voxels} (--conf max_voxels)."
            )
        return shape, components

    def check_inputs(
        self, image: str, companions: Sequence[str] = (), image_id: Optional[str] = None
    ) -> tuple[Union[str, list[str]], int]:
        """Check an input from its headers (size, modalities) before anything is loaded.

        Args:
            image: path of the image (the first channel of a multi-channel bundle).
            companions: paths of the other channels, in channel order (empty: ``image`` must hold every channel).
            image_id: the datastore id of ``image``, used to name the missing companions in the error message.

        Returns:
            what the predictor takes (a path, or the list of per-channel paths) and the number of spatial dims.

        Raises:
            InputTooLargeError, MissingModalityError, InferInputError (unreadable header).
        """
        shape, components = self._check_size(image)
        wanted = len(self.bundle.input_channels)
        if wanted == 1:
            return image, len(shape)
        if companions:
            if len(companions) != wanted - 1:
                raise MissingModalityError(
                    f"model {self.bundle.name!r} takes {wanted} channels {self.bundle.input_channels}, got "
                    f"{1 + len(companions)} image(s)."
                )
            for path in companions:
                self._check_size(path)
            return [image, *companions], len(shape)
        # one file holding every channel: a 4D NIfTI (X, Y, Z, C) or a vector image with C components
        if components > 1:
            channels, spatial_dims = components, len(shape)
        else:
            channels, spatial_dims = (shape[-1], 3) if len(shape) == 4 else (1, len(shape))
        if channels == wanted:
            return image, spatial_dims
        stem = image_id or "<id>"
        names = ", ".join(self.bundle.input_channels)
        raise MissingModalityError(
            f"model {self.bundle.name!r} needs {wanted} co-registered images ({names}); image "
            f"{image_id or Path(image).name!r} has {channels} channel(s). Put the other modalities next to it in the "
            f"datastore as {', '.join(repr(i) for i in self.companion_ids(stem))} (image id + '_' + channel name, "
            f"e.g. {self.companion_ids(stem)[0]}.nii.gz), or send one file with {wanted} channels ({names})."
        )

    def __call__(self, request: dict[str, Any]) -> tuple[Optional[str], dict[str, Any]]:
        """Run inference; see the class docstring for the request keys.

        Returns:
            the path of a temporary NIfTI label map (uint8, the image's shape and affine) and the result JSON.
        """
        begin = time.perf_counter()
        image = request.get("image")
        if isinstance(image, str):
            if not os.path.isfile(image):
                raise FileNotFoundError(f"image {image!r} does not exist.")
            data, spatial_dims = self.check_inputs(image, request.get("image_channels") or (), request.get("image_id"))
        elif isinstance(image, (np.ndarray, torch.Tensor)):
            voxels = math.prod(image.shape)
            if voxels > self.max_voxels:
                raise InputTooLargeError(
                    f"the image has {voxels} voxel values; the server accepts at most {self.max_voxels}."
                )
            # an in-process array: (*spatial) for single-channel bundles, (C, *spatial) for multi-channel ones
            data, spatial_dims = image, image.ndim - (len(self.bundle.input_channels) > 1)
        else:
            raise TypeError(f"request['image'] must be a file path or an array, got {type(image).__name__}.")
        device = name_to_device(request.get("device"))
        try:
            predictor = self.predictor(device)
        except ValueError as e:
            raise InferInputError(str(e)) from None
        loaded = time.perf_counter()
        try:
            labels = predictor.predict(data)
        except ValueError as e:  # the predictor's input checks (unreadable file, NaN voxels, wrong shape)
            raise InferInputError(str(e)) from e
        inferred = time.perf_counter()

        if not isinstance(labels, MetaTensor):
            labels = MetaTensor(labels)
        if labels.ndim == spatial_dims + 1:  # multi-channel predictors keep a channel dim: (1, *spatial)
            labels = labels[0]
        fd, result = tempfile.mkstemp(suffix=self.result_extension, prefix=f"{self.bundle.name}_")
        os.close(fd)
        writer = NibabelWriter(output_dtype=np.uint8)
        writer.set_data_array(labels.detach().cpu(), channel_dim=None)
        writer.set_metadata({"affine": labels.affine, "original_affine": labels.affine}, resample=False)
        writer.write(result, verbose=False)
        end = time.perf_counter()

        checkpoint = self.bundle.checkpoint
        return result, {
            "model": self.bundle.name,
            "label_names": dict(self.bundle.labels),
            "checkpoint": {
                "path": str(checkpoint),
                "checksum": file_checksum(str(checkpoint)),
                "modified_time": checkpoint.stat().st_mtime,
            },
            "device": str(normalize_device(device)),
            "latencies": {
                "load": round(loaded - begin, 3),
                "infer": round(inferred - loaded, 3),
                "write": round(end - inferred, 3),
                "total": round(end - begin, 3),
            },
        }
