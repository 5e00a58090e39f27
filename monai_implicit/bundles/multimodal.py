"""Prediction with bundles whose input has several modalities, or whose network is 2D and runs slice by slice.

:func:`monai_implicit.bundles.load` returns a :class:`~monai_implicit.bundles.BundlePredictor`, which takes one
single-channel image whose number of spatial dimensions is the network's.  Two bundles need more:

* ``nerdunet_wmh`` takes two co-registered modalities (T1 and FLAIR) as two channels;
* ``nerdunet_wmh`` and ``njetunet_la`` are 2D networks (as in the NeRD paper, seeds/001 Sec. 3.2) applied to 3D
  volumes slice by slice with MONAI's ``SliceInferer``, so the input has one more spatial dimension than the network.

:class:`MultiModalPredictor` accepts a list of paths (one file per modality, stacked as channels in the given
order), a multi-channel file, or a ``(C, *spatial)`` tensor, and checks ``C`` against the network's input channels
and the spatial dimensions against the bundle's images; :func:`load_multimodal` builds it from a bundle folder
through :func:`monai_implicit.bundles.load` (same config, checkpoint and baking).
"""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from monai.data import MetaTensor

from monai_implicit.transforms.checks import check_finite

from .predictor import BundlePredictor, load_label_predictor

__all__ = ["MultiModalPredictor", "load_multimodal", "path_parts_name_formatter"]

PathLike = Union[str, os.PathLike]


class MultiModalPredictor(BundlePredictor):
    """:class:`BundlePredictor` for ``in_channels`` modalities and images of ``spatial_dims`` dimensions.

    Args:
        network, transforms, inferer, device: as :class:`BundlePredictor` (``transforms`` act on
            ``{"image": (in_channels, *spatial)}``).
        in_channels: number of modalities (the network's input channels).
        spatial_dims: spatial dimensions of the images (3 for volumes, also when a 2D network runs slice by slice).

    Shapes:
        ``predict`` accepts a sequence of ``in_channels`` paths (one per modality, same grid), one path to a file
        with ``in_channels`` channels, a ``(in_channels, *spatial)`` tensor/array, or (one modality only) a
        ``(*spatial)`` tensor/array.  It returns a uint8 MetaTensor label map ``(1, *spatial)`` (``(*spatial)``
        for a ``(*spatial)`` input) with the input's affine.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        transforms: Sequence[Any],
        inferer: Any,
        device: torch.device,
        in_channels: int,
        spatial_dims: int = 3,
    ) -> None:
        super().__init__(network, transforms, inferer, device)
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}.")
        if spatial_dims not in (1, 2, 3):
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}.")
        self.in_channels = in_channels
        self.spatial_dims = spatial_dims

    @property
    def image_spatial_dims(self) -> int:
        """Spatial dimensions of the images (given at construction: 3 for volumes, also for a 2D network)."""
        return self.spatial_dims

    def _as_input(self, data: Any) -> tuple[MetaTensor, bool]:
        squeeze = False
        if isinstance(data, (list, tuple)):
            if len(data) != self.in_channels or not all(isinstance(p, (str, os.PathLike)) for p in data):
                raise ValueError(
                    f"predict expects {self.in_channels} paths (one per modality), got {len(data)} items: {data!r}."
                )
            image, what, label = self._load(data), "image", ", ".join(str(p) for p in data)
        elif isinstance(data, (str, os.PathLike)):
            image, what, label = self._load(data), "image", str(data)
        elif isinstance(data, (torch.Tensor, np.ndarray)):
            image = data if isinstance(data, MetaTensor) else MetaTensor(torch.as_tensor(data))
            what, label = "input", f"tensor of shape {tuple(image.shape)}"
            if image.ndim == self.spatial_dims and self.in_channels == 1:
                image, squeeze = image.unsqueeze(0), True
        else:
            raise TypeError(
                f"predict expects a path, a sequence of paths, a torch.Tensor or a numpy array, "
                f"got {type(data).__name__}."
            )
        accepted = (self.spatial_dims, self.spatial_dims + 1) if self.takes_volumes_slice_wise else (self.spatial_dims,)
        if image.ndim - 1 not in accepted or image.shape[0] != self.in_channels:
            source = f" (from {label!r})" if what == "image" else ""
            raise ValueError(
                f"predict expects an image ({self.in_channels}, *spatial) with {' or '.join(map(str, accepted))} "
                f"spatial dims ({self.in_channels} modalities), got shape {tuple(image.shape)}{source}."
            )
        check_finite(image, name=label, what=what)
        return image, squeeze


def load_multimodal(
    bundle_dir: PathLike,
    device: Optional[Union[str, torch.device]] = None,
    spatial_dims: int = 3,
    config_file: PathLike = "configs/inference.json",
    checkpoint: PathLike = "models/model.pt",
    bake: bool = True,
    **override: Any,
) -> MultiModalPredictor:
    """Load a trained bundle as a :class:`MultiModalPredictor` (arguments as :func:`monai_implicit.bundles.load`).

    ``in_channels`` is the network's (``network_def#in_channels``); ``spatial_dims`` is that of the images.

    Example::

        predictor = load_multimodal("bundles/nerdunet_wmh")
        wmh = predictor.predict(["sub/pre/T1.nii.gz", "sub/pre/FLAIR.nii.gz"])  # (1, X, Y, Z) label map
    """
    base = load_label_predictor(bundle_dir, device, config_file, checkpoint, bake, **override)
    in_channels = getattr(base.network, "in_channels", None)
    if not isinstance(in_channels, int):
        raise TypeError(f"the bundle's network {type(base.network).__name__} has no integer in_channels attribute.")
    return MultiModalPredictor(
        base.network, list(base.transform.transforms), base.inferer, base.device, in_channels, spatial_dims
    )


def path_parts_name_formatter(start: int = -4, stop: int = -2, sep: str = "_") -> Any:
    """An ``output_name_formatter`` for ``SaveImaged`` naming outputs after folders of the input path.

    Per-subject layouts store every subject's image under the same file name (WMH: ``<site>/<subject>/pre/T1.nii.gz``),
    so MONAI's default formatter (the file name) would make every output overwrite the previous one.  The
    formatter joins ``Path(filename_or_obj).parts[start:stop]`` (``-4:-2`` gives ``<site>_<subject>``).
    """
    from pathlib import Path

    def formatter(metadict: dict, saver: Any = None) -> dict:
        source = metadict.get("filename_or_obj", "")
        if isinstance(source, (list, tuple)):
            source = source[0] if source else ""
        parts = Path(str(source)).parts[start:stop]
        if not parts:
            raise ValueError(f"cannot name the output of {source!r}: the path has no parts [{start}:{stop}].")
        return {"subject": sep.join(parts), "idx": metadict.get("patch_index")}

    return formatter
