"""MONAI Label infer task serving a segmentation bundle through :func:`monai_implicit.bundles.load`.

The task uses the bundle's ``configs/inference.json`` (network, preprocessing, sliding-window inferer) and
``models/model.pt`` through the package's predictor, which bakes the implicit convolutions into plain ones and
returns the label map in the input's own voxel grid.  It needs neither torchvision nor MONAI Label's bundle
helpers, and never downloads anything.  The loaded predictor is kept per device and reloaded when the checkpoint
file changes (e.g. after training from MONAI Label).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from typing import Any, Optional, Union

import numpy as np
import torch
from monai.data import MetaTensor, NibabelWriter
from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType
from monailabel.utils.others.generic import device_list, file_checksum, name_to_device

from monai_implicit.apps.label.bundles import SegmentationBundle

__all__ = ["BundleSegmentationInfer"]

logger = logging.getLogger(__name__)


class BundleSegmentationInfer(InferTask):
    """Segmentation with a bundle: ``request["image"]`` (a NIfTI path) -> a NIfTI label map of the same shape.

    Args:
        bundle: the served bundle (label names from its ``channel_def``).
        result_extension: extension of the written label file.

    The result JSON holds ``label_names`` (name -> label value, what 3D Slicer and OHIF use to name segments),
    ``latencies`` (seconds) and ``checkpoint`` (path, SHA256 checksum and modification time of the weights used).
    """

    def __init__(self, bundle: SegmentationBundle, result_extension: str = ".nii.gz") -> None:
        if not isinstance(bundle, SegmentationBundle):
            raise TypeError(f"bundle must be a SegmentationBundle, got {type(bundle).__name__}.")
        if result_extension not in (".nii", ".nii.gz"):
            raise ValueError(f"result_extension must be '.nii' or '.nii.gz', got {result_extension!r}.")
        super().__init__(
            type=InferType.SEGMENTATION,
            labels=dict(bundle.labels),
            dimension=bundle.spatial_dims,
            description=bundle.description,
            config={"device": device_list()},
        )
        self.bundle = bundle
        self.result_extension = result_extension
        self._lock = threading.Lock()
        self._predictors: dict[str, tuple[tuple[int, int], Any]] = {}

    def is_valid(self) -> bool:
        """Served (listed by ``/info/``) only once the bundle has trained weights."""
        return self.bundle.checkpoint.is_file()

    def get_path(self, validate: bool = True) -> Optional[str]:
        path = self.bundle.checkpoint
        return str(path) if path.is_file() or not validate else None

    def predictor(self, device: Union[str, torch.device]) -> Any:
        """The bundle's predictor on ``device``, reloaded when ``models/model.pt`` has changed on disk."""
        from monai_implicit.bundles import load

        checkpoint = self.bundle.checkpoint
        if not checkpoint.is_file():
            raise FileNotFoundError(f"model {self.bundle.name!r} has no trained weights ({checkpoint}).")
        stat = checkpoint.stat()
        version = (stat.st_mtime_ns, stat.st_size)
        key = str(device)
        with self._lock:
            cached = self._predictors.get(key)
            if cached is None or cached[0] != version:
                logger.info(f"loading {self.bundle.name} from {checkpoint} on {key}")
                self._predictors[key] = (version, load(self.bundle.root, device=device))
            return self._predictors[key][1]

    def __call__(self, request: dict[str, Any]) -> tuple[Optional[str], dict[str, Any]]:
        """Run inference; ``request``: ``image`` (path, or a ``(*spatial)`` / ``(1, *spatial)`` array), ``device``.

        Returns:
            the path of a temporary NIfTI label map (uint8, the image's shape and affine) and the result JSON.
        """
        begin = time.perf_counter()
        image = request.get("image")
        if isinstance(image, str):
            if not os.path.isfile(image):
                raise FileNotFoundError(f"image {image!r} does not exist.")
        elif not isinstance(image, (np.ndarray, torch.Tensor)):
            raise TypeError(f"request['image'] must be a file path or an array, got {type(image).__name__}.")
        device = name_to_device(request.get("device"))
        predictor = self.predictor(device)
        loaded = time.perf_counter()
        labels = predictor.predict(image)
        inferred = time.perf_counter()

        if not isinstance(labels, MetaTensor):
            labels = MetaTensor(labels)
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
            "device": str(device),
            "latencies": {
                "load": round(loaded - begin, 3),
                "infer": round(inferred - loaded, 3),
                "write": round(end - inferred, 3),
                "total": round(end - begin, 3),
            },
        }
