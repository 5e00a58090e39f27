"""A Python API for pipelines: ``monai_implicit.bundles.load(bundle_dir).predict(path_or_tensor)``.

The predictor reads the bundle's ``configs/inference.json`` (network, preprocessing, sliding-window inferer) and
``models/model.pt``, bakes the implicit convolutions into plain ones (identical output, no kernel-network cost,
:func:`monai_implicit.networks.utils.bake`) and returns label maps in the input's own voxel grid: same shape, same
affine, as a MetaTensor.

Inputs are checked before the network sees them, so that a bad input fails with an error naming it instead of a
silently wrong result or a crash deep in MONAI/PyTorch: a missing file, a folder, an unreadable (e.g. truncated)
file, NaN or infinite voxels (refused: one NaN voxel would turn the whole prediction into one class), the wrong
number of spatial dimensions (a 2D file for a 3D bundle) and extra channels or volumes (a 4D file for a
single-channel bundle).  A bundle for 2D images also takes volumes ``(1, X, Y, Z)``, predicted slice by slice along
the last axis.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.inferers import SliceInferer
from monai.transforms import Compose, Invertd

from monai_implicit.transforms.checks import CheckedLoadImaged, ImageReadError, NonFiniteImageError, check_finite

__all__ = ["BundlePredictor", "load", "load_label_predictor", "load_trained_network"]

PathLike = Union[str, os.PathLike]


class BundlePredictor:
    """Sliding-window prediction with a bundle's network, returning label maps in the input's voxel grid.

    Args:
        network: the trained network (eval mode is set).
        transforms: the bundle's preprocessing *after* loading (orientation, spacing, intensity window...), applied
            to ``{"image": MetaTensor (1, *spatial)}``; it must be invertible up to intensity changes.
        inferer: a MONAI inferer, e.g. ``SlidingWindowInferer``.
        device: where the network runs.

    Shapes:
        ``predict`` accepts a path (any format ``LoadImage`` reads), a ``(*spatial)`` or ``(1, *spatial)`` tensor or
        array; it returns an integer MetaTensor label map of the same shape and affine (for a path: the shape of
        the image array in the file).  ``*spatial`` has :attr:`image_spatial_dims` axes.  A bundle for 2D images
        also accepts a volume (a 3D file, or a ``(1, X, Y, Z)`` tensor: the channel axis is required, since
        ``(X, Y, Z)`` could be a multi-channel image) and predicts it slice by slice along the last axis, each slice
        exactly as the 2D image it is.

    Raises (from ``predict``):
        FileNotFoundError: the path does not exist.
        ValueError: the path is a folder; the file cannot be read
            (:class:`~monai_implicit.transforms.ImageReadError`); the image has NaN or infinite voxels
            (:class:`~monai_implicit.transforms.NonFiniteImageError`, naming the count); wrong number of spatial
            dimensions or channels (each message names the file or the shape).
        TypeError: the input is neither a path nor a tensor or array.
    """

    def __init__(self, network: torch.nn.Module, transforms: Sequence[Any], inferer: Any, device: torch.device):
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.transform = Compose(list(transforms))
        self.inferer = inferer
        # non-finite voxels are checked once, in _as_input, for paths and tensors alike
        self.loader = CheckedLoadImaged("image", ensure_channel_first=True, image_only=True, check_finite=False)
        self.invert = Invertd("pred", transform=self.transform, orig_keys="image", nearest_interp=False)

    @property
    def network_spatial_dims(self) -> int:
        """Spatial dimensions of the network's input."""
        return int(getattr(self.network, "spatial_dims", 3))

    @property
    def image_spatial_dims(self) -> int:
        """Spatial dimensions of the images the bundle's transforms take: the network's, plus one when the inferer
        runs a 2D network on volumes (MONAI's ``SliceInferer``)."""
        return self.network_spatial_dims + (1 if isinstance(self.inferer, SliceInferer) else 0)

    @property
    def takes_volumes_slice_wise(self) -> bool:
        """Whether volumes are predicted slice by slice: the bundle takes 2D images (volumes then add one axis)."""
        return self.image_spatial_dims == 2

    def _load(self, path: Union[PathLike, Sequence[PathLike]]) -> MetaTensor:
        """Read one file (or one file per channel) with :attr:`loader`; every failure names the file."""
        paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
        for p in paths:
            if not os.path.exists(p):
                raise FileNotFoundError(f"image {str(p)!r} does not exist.")
            if os.path.isdir(p):
                raise ValueError(
                    f"image {str(p)!r} is a folder; predict takes one image file (or a tensor): read a DICOM series "
                    "first, e.g. with monai.transforms.LoadImage(reader='PydicomReader'), or convert it to NIfTI."
                )
        source = str(path) if isinstance(path, (str, os.PathLike)) else [str(p) for p in paths]
        try:
            return self.loader({"image": source})["image"]
        except (FileNotFoundError, ImageReadError, NonFiniteImageError):
            raise
        except Exception as e:  # readers raise bare EOFError / OSError / RuntimeError naming no file
            raise ImageReadError(f"cannot read image {source!r}: {type(e).__name__}: {e}") from e

    def _as_input(self, data: Union[PathLike, torch.Tensor, np.ndarray]) -> tuple[MetaTensor, bool]:
        """``(image (1, *spatial), squeeze)``, checked: ``squeeze`` tells whether the output drops the channel axis."""
        n = self.image_spatial_dims
        volumes = self.takes_volumes_slice_wise
        if isinstance(data, (str, os.PathLike)):
            image, squeeze, what, label = self._load(data), True, "image", str(data)
            name = f"image {label!r}"
            accepted = (n, n + 1) if volumes else (n,)
            if image.shape[0] != 1:
                raise ValueError(
                    f"{name} holds {image.shape[0]} channels or volumes (shape {tuple(image.shape)} channel-first "
                    f"after loading; a 4D file?); the bundle takes one single-channel image with {n} spatial dims."
                )
            if image.ndim - 1 not in accepted:
                raise ValueError(
                    f"{name} has {image.ndim - 1} spatial dims (shape {tuple(image.shape[1:])}); the bundle takes "
                    f"images with {' or '.join(map(str, accepted))} spatial dims"
                    + (" (volumes slice by slice along the last axis)." if volumes else ".")
                )
        elif isinstance(data, (torch.Tensor, np.ndarray)):
            image = data if isinstance(data, MetaTensor) else MetaTensor(torch.as_tensor(data))
            what, label = "input", f"tensor of shape {tuple(image.shape)}"
            if image.ndim == n:
                image, squeeze = image.unsqueeze(0), True
            elif image.shape[0] == 1 and (image.ndim == n + 1 or (volumes and image.ndim == n + 2)):
                squeeze = False
            else:
                raise ValueError(
                    f"predict expects a single-channel image (*spatial) or (1, *spatial) with {n} spatial dims"
                    + (", or a single-channel volume (1, *spatial, Z) predicted slice by slice (the channel axis is "
                       "required: add it with x[None])" if volumes else "")
                    + f", got shape {tuple(image.shape)}."
                )
        else:
            raise TypeError(f"predict expects a path, a torch.Tensor or a numpy array, got {type(data).__name__}.")
        check_finite(image, name=label, what=what)
        return image, squeeze

    def _predict_image(self, image: MetaTensor) -> torch.Tensor:
        """The uint8 label map ``(1, *spatial)`` of one image ``(1, *spatial)`` in its own grid."""
        item = self.transform({"image": image.float()})
        logits = self.inferer(item["image"].unsqueeze(0).to(self.device), self.network)
        # probabilities, not logits, are resampled back (as the bundle's inference.json does)
        item["pred"] = torch.softmax(logits[0].float(), dim=0).cpu()
        pred = self.invert(item)["pred"]
        return torch.argmax(torch.as_tensor(pred), dim=0, keepdim=True).to(torch.uint8)

    @torch.no_grad()
    def predict(self, data: Union[PathLike, torch.Tensor, np.ndarray]) -> MetaTensor:
        """The prediction of ``data`` in its own grid (label map here; see the class docstring for shapes)."""
        image, squeeze = self._as_input(data)
        if image.ndim - 1 == self.image_spatial_dims + 1:
            # a volume for a 2D-image bundle: each slice along the last axis is predicted as the 2D image it is
            plain = image.as_tensor()
            out = torch.stack([self._predict_image(MetaTensor(plain[..., z])) for z in range(plain.shape[-1])], -1)
        else:
            out = self._predict_image(image)
        result = MetaTensor(out, affine=image.affine, meta=dict(image.meta))
        if tuple(result.shape[1:]) != tuple(image.shape[1:]):
            raise RuntimeError(
                f"inverted prediction {tuple(result.shape)} does not match the input {tuple(image.shape)}."
            )
        return result[0] if squeeze and result.shape[0] == 1 else result


def load(
    bundle_dir: PathLike,
    device: Optional[Union[str, torch.device]] = None,
    config_file: PathLike = "configs/inference.json",
    checkpoint: PathLike = "models/model.pt",
    bake: bool = True,
    **override: Any,
) -> BundlePredictor:
    """Load any trained bundle of this project as the predictor its outputs need.

    * a bundle whose inference config defines ``predict_postprocess`` (dense outputs: reconstructions, RF
      probabilities) -> :class:`~monai_implicit.bundles.dense_predictor.DensePredictor`;
    * a segmentation network with several input channels (e.g. T1 + FLAIR) ->
      :class:`~monai_implicit.bundles.multimodal.MultiModalPredictor` for volumes (``predict([t1, flair])``);
    * otherwise a :class:`BundlePredictor` (label map in the input's grid).

    Args:
        bundle_dir: the bundle folder (with ``configs/`` and ``models/``).
        device: default CUDA when available, else CPU.
        config_file, checkpoint: relative to ``bundle_dir`` unless absolute.
        bake: replace implicit convolutions by plain ones (same output, faster).
        override: config overrides, e.g. ``{"sw_batch_size": 8}`` (ids as on the command line); an id that is not in
            the inference config raises a ValueError naming it (instead of being silently ignored).

    Example::

        predictor = monai_implicit.bundles.load("bundles/hyperunet_lits")
        seg = predictor.predict("ct.nii.gz")  # MetaTensor label map, same shape and affine as the CT
    """
    config = Path(bundle_dir) / config_file
    if not config.is_file():
        raise FileNotFoundError(f"config file {str(config)!r} does not exist.")
    parser = ConfigParser()
    parser.read_config(str(config))
    if "predict_postprocess" in parser:
        from .dense_predictor import load_bundle

        return load_bundle(bundle_dir, device, config_file, checkpoint, bake, **override)
    base = load_label_predictor(bundle_dir, device, config_file, checkpoint, bake, **override)
    in_channels = getattr(base.network, "in_channels", None)
    if isinstance(in_channels, int) and in_channels > 1:
        from .multimodal import MultiModalPredictor

        transforms = list(base.transform.transforms)
        return MultiModalPredictor(base.network, transforms, base.inferer, base.device, in_channels)
    return base


def load_label_predictor(
    bundle_dir: PathLike,
    device: Optional[Union[str, torch.device]] = None,
    config_file: PathLike = "configs/inference.json",
    checkpoint: PathLike = "models/model.pt",
    bake: bool = True,
    **override: Any,
) -> BundlePredictor:
    """Load a trained segmentation bundle as a plain :class:`BundlePredictor` (no dispatch; see :func:`load`).

    Args:
        bundle_dir: the bundle folder (with ``configs/`` and ``models/``).
        device: default CUDA when available, else CPU.
        config_file, checkpoint: relative to ``bundle_dir`` unless absolute.
        bake: replace implicit convolutions by plain ones (same output, faster).
        override: config overrides, e.g. ``{"sw_batch_size": 8}`` (ids as on the command line).
    """
    parser, network, device = load_trained_network(bundle_dir, device, config_file, checkpoint, bake, **override)
    transforms = parser.get_parsed_content("preprocess_transforms")
    inferer = parser.get_parsed_content("inferer")
    return BundlePredictor(network, transforms, inferer, device)


def load_trained_network(
    bundle_dir: PathLike,
    device: Optional[Union[str, torch.device]] = None,
    config_file: PathLike = "configs/inference.json",
    checkpoint: PathLike = "models/model.pt",
    bake: bool = True,
    **override: Any,
) -> tuple[ConfigParser, torch.nn.Module, torch.device]:
    """The parsed inference config, the trained network (eval mode, baked unless ``bake=False``) and the device.

    The one loading path behind every predictor.  ``metadata.json`` is read next to the config file, else from
    ``bundle_dir/configs``; ``bundle_root`` is ``bundle_dir``.  Arguments as :func:`load`.

    Raises:
        FileNotFoundError: the config file or the checkpoint does not exist (the message names it).
        ValueError: an ``override`` id that is not in the config (the message names it).
    """
    root = Path(bundle_dir)
    config = root / config_file
    ckpt = root / checkpoint
    for path, what in ((config, "config file"), (ckpt, "checkpoint")):
        if not path.is_file():
            raise FileNotFoundError(f"{what} {str(path)!r} does not exist.")
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    parser = ConfigParser()
    parser.read_config(str(config))
    for meta in (config.parent / "metadata.json", root / "configs" / "metadata.json"):
        if meta.is_file():
            parser.read_meta(str(meta))
            break
    parser["bundle_root"] = str(root.resolve())
    parser["device"] = device
    if "ckpt_file" in parser:
        # what the config derives from its weights file (e.g. the training plan stored next to it) follows them
        parser["ckpt_file"] = str(ckpt.resolve())
    # ConfigParser.update would add a misspelt id as a new, unused entry and the override would do nothing
    unknown = [key for key in override if key not in parser]
    if unknown:
        raise ValueError(
            f"override id(s) {unknown} are not in {str(config)!r}; overrides must name ids of the inference config "
            f"(nested ids with '#', e.g. 'network_def#features'); its top-level ids are {sorted(parser.config)}."
        )
    parser.update(override)
    network = parser.get_parsed_content("network_def")
    from ignite.handlers import Checkpoint

    from monai_implicit.handlers.checkpoints import read_checkpoint

    state = read_checkpoint(ckpt, map_location="cpu")  # torch.load whose errors name a truncated/corrupt file
    Checkpoint.load_objects(to_load={"model": network}, checkpoint=state)
    network = network.eval()
    if bake:
        from monai_implicit.networks.utils import bake as bake_fn

        network = bake_fn(network)
    return parser, network, device
