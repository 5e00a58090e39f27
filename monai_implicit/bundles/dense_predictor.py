"""Python API for bundles whose output is not a label map: probabilities (localisation) or images (reconstruction).

:class:`~monai_implicit.bundles.BundlePredictor` returns ``argmax`` label maps, which is right for segmentation but
meaningless for a one-channel localisation logit or a reconstructed MR image.  :class:`DensePredictor` returns the
network output itself, after the bundle's own post-processing (e.g. a sigmoid), in the input's grid.

A bundle opts in by defining ``predict_postprocess`` in ``configs/inference.json`` (a callable on the output
``(C, *spatial)``, ``"$lambda x: x"`` for none) and, optionally, ``predict_loader`` (a ``LoadImaged("image", ...)``
for formats that need a specific reader, e.g. channel-first ``.npy`` lines) and ``network_extra_inputs`` (keyword
arguments of the network taken from the preprocessed item, ``{"kspace": "kspace", "mask": "mask"}`` for a
data-consistent reconstruction; the mapping MONAI's ``PrepareBatchExtraInput`` takes).  :func:`load_bundle` then
builds a :class:`DensePredictor`; for any other bundle it returns :func:`monai_implicit.bundles.load`'s predictor.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.transforms import LoadImaged

from .predictor import BundlePredictor, load_label_predictor, load_trained_network

__all__ = ["DensePredictor", "load_bundle"]

PathLike = Union[str, os.PathLike]


class DensePredictor(BundlePredictor):
    """Like :class:`BundlePredictor`, but :meth:`predict` returns the (post-processed) network output.

    Args:
        network, transforms, inferer, device: as :class:`BundlePredictor`.
        postprocess: applied to the inverted output ``(C_out, *spatial)`` (e.g. ``torch.sigmoid``); None for none.
        loader: dictionary loader for paths (default ``LoadImaged("image", ensure_channel_first=True)``).
        extra_inputs: keyword arguments of the network's forward taken from the preprocessed item (argument name ->
            key, e.g. ``{"kspace": "kspace", "mask": "mask"}``), each given a batch axis; None for none.

    Shapes:
        ``predict`` accepts a path, a ``(*spatial)`` or ``(1, *spatial)`` tensor or array and returns a float
        MetaTensor ``(C_out, *spatial)`` (``(*spatial)`` when ``C_out == 1`` and the input had no channel axis) with
        the input's affine and meta data.  Inputs are checked, and a bundle for 2D images also takes volumes
        (predicted slice by slice along the last axis), as in :class:`BundlePredictor`.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        transforms: Sequence[Any],
        inferer: Any,
        device: torch.device,
        postprocess: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        loader: Optional[Callable[[dict], dict]] = None,
        extra_inputs: Optional[Mapping[str, str]] = None,
    ) -> None:
        super().__init__(network, transforms, inferer, device)
        if extra_inputs is not None and not isinstance(extra_inputs, Mapping):
            raise TypeError(f"extra_inputs must be a mapping (argument -> key), got {type(extra_inputs).__name__}.")
        self.extra_inputs = dict(extra_inputs or {})
        if postprocess is not None and not callable(postprocess):
            raise TypeError(f"postprocess must be callable or None, got {type(postprocess).__name__}.")
        self.postprocess = postprocess
        if loader is not None:
            self.loader = loader

    @torch.no_grad()
    def predict(self, data: Union[PathLike, torch.Tensor, np.ndarray]) -> MetaTensor:
        """Network output of ``data`` in its own grid; see the class docstring for shapes."""
        return super().predict(data)

    def _predict_image(self, image: MetaTensor) -> torch.Tensor:
        """The post-processed output ``(C_out, *spatial)`` of one image ``(1, *spatial)`` in its own grid."""
        item = self.transform({"image": image.float()})
        kwargs = {arg: torch.as_tensor(item[k]).unsqueeze(0).to(self.device) for arg, k in self.extra_inputs.items()}
        out = self.inferer(torch.as_tensor(item["image"]).unsqueeze(0).float().to(self.device), self.network, **kwargs)
        item["pred"] = MetaTensor(out[0].float().cpu(), meta=dict(getattr(item["image"], "meta", {})))
        if hasattr(item["image"], "applied_operations"):
            item["pred"].applied_operations = list(item["image"].applied_operations)
        pred = torch.as_tensor(self.invert(item)["pred"]).float()
        if self.postprocess is not None:
            pred = torch.as_tensor(self.postprocess(pred))
        return pred


def load_bundle(
    bundle_dir: PathLike,
    device: Optional[Union[str, torch.device]] = None,
    config_file: PathLike = "configs/inference.json",
    checkpoint: PathLike = "models/model.pt",
    bake: bool = True,
    **override: Any,
) -> BundlePredictor:
    """Load a trained bundle: a :class:`DensePredictor` when its inference config defines ``predict_postprocess``,
    otherwise :func:`monai_implicit.bundles.load` (label maps).  Arguments as :func:`monai_implicit.bundles.load`.

    Example::

        predictor = load_bundle("bundles/ckcnn_rf_localization")
        probability = predictor.predict("rf_0001.npy")  # (L,) bubble probability per sample
    """
    config = Path(bundle_dir) / config_file
    if not config.is_file():
        raise FileNotFoundError(f"config file {str(config)!r} does not exist.")
    probe = ConfigParser()
    probe.read_config(str(config))
    if "predict_postprocess" not in probe:
        return load_label_predictor(bundle_dir, device, config_file, checkpoint, bake, **override)
    parser, network, device = load_trained_network(bundle_dir, device, config_file, checkpoint, bake, **override)
    loader = parser.get_parsed_content("predict_loader") if "predict_loader" in parser else None
    if loader is not None and not isinstance(loader, (LoadImaged, Callable)):  # type: ignore[arg-type]
        raise TypeError(f"predict_loader must be a dictionary loader such as LoadImaged, got {type(loader).__name__}.")
    return DensePredictor(
        network, parser.get_parsed_content("preprocess_transforms"), parser.get_parsed_content("inferer"), device,
        postprocess=parser.get_parsed_content("predict_postprocess"), loader=loader,
        extra_inputs=parser.get_parsed_content("network_extra_inputs") if "network_extra_inputs" in parser else None,
    )
