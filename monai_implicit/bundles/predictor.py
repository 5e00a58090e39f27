"""A Python API for pipelines: ``monai_implicit.bundles.load(bundle_dir).predict(path_or_tensor)``.

The predictor reads the bundle's ``configs/inference.json`` (network, preprocessing, sliding-window inferer) and
``models/model.pt``, bakes the implicit convolutions into plain ones (identical output, no kernel-network cost,
:func:`monai_implicit.networks.utils.bake`) and returns label maps in the input's own voxel grid: same shape, same
affine, as a MetaTensor.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd, LoadImaged

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
        the image array in the file).
    """

    def __init__(self, network: torch.nn.Module, transforms: Sequence[Any], inferer: Any, device: torch.device):
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.transform = Compose(list(transforms))
        self.inferer = inferer
        self.loader = LoadImaged("image", ensure_channel_first=True, image_only=True)
        self.invert = Invertd("pred", transform=self.transform, orig_keys="image", nearest_interp=False)

    def _as_input(self, data: Union[PathLike, torch.Tensor, np.ndarray]) -> tuple[MetaTensor, bool]:
        if isinstance(data, (str, os.PathLike)):
            if not os.path.exists(data):
                raise FileNotFoundError(f"image {str(data)!r} does not exist.")
            return self.loader({"image": str(data)})["image"], True
        if not isinstance(data, (torch.Tensor, np.ndarray)):
            raise TypeError(f"predict expects a path, a torch.Tensor or a numpy array, got {type(data).__name__}.")
        image = data if isinstance(data, MetaTensor) else MetaTensor(torch.as_tensor(data))
        n_spatial = self.network_spatial_dims
        if image.ndim == n_spatial:
            return image.unsqueeze(0), True
        if image.ndim == n_spatial + 1 and image.shape[0] == 1:
            return image, False
        raise ValueError(
            f"predict expects a single-channel image (*spatial) or (1, *spatial) with {n_spatial} spatial dims, "
            f"got shape {tuple(image.shape)}."
        )

    @property
    def network_spatial_dims(self) -> int:
        return int(getattr(self.network, "spatial_dims", 3))

    @torch.no_grad()
    def predict(self, data: Union[PathLike, torch.Tensor, np.ndarray]) -> MetaTensor:
        """Label map (argmax over classes) of ``data`` in its own grid; see the class docstring for shapes."""
        image, squeeze = self._as_input(data)
        item = self.transform({"image": image.float()})
        logits = self.inferer(item["image"].unsqueeze(0).to(self.device), self.network)
        # probabilities, not logits, are resampled back (as the bundle's inference.json does)
        item["pred"] = torch.softmax(logits[0].float(), dim=0).cpu()
        pred = self.invert(item)["pred"]
        labels = torch.argmax(torch.as_tensor(pred), dim=0, keepdim=True).to(torch.uint8)
        out = MetaTensor(labels, affine=image.affine, meta=dict(image.meta))
        if tuple(out.shape[1:]) != tuple(image.shape[1:]):
            raise RuntimeError(f"inverted prediction {tuple(out.shape)} does not match the input {tuple(image.shape)}.")
        return out[0] if squeeze else out


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
        override: config overrides, e.g. ``{"sw_batch_size": 8}`` (ids as on the command line).

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
    parser.update(override)
    network = parser.get_parsed_content("network_def")
    from ignite.handlers import Checkpoint

    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    Checkpoint.load_objects(to_load={"model": network}, checkpoint=state)
    network = network.eval()
    if bake:
        from monai_implicit.networks.utils import bake as bake_fn

        network = bake_fn(network)
    return parser, network, device
