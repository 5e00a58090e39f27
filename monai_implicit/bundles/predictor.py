"""One Python API for every bundle of this package: ``monai_implicit.bundles.load(bundle).predict(path_or_tensor)``.

:func:`load` reads the bundle's ``configs/inference.json`` (network, preprocessing, inferer) once, with the
``metadata.json`` beside it, loads ``models/model.pt``, bakes the implicit convolutions into plain ones (identical
output, no kernel-network cost, :func:`monai_implicit.networks.utils.bake`) and returns the predictor that the
bundle's declared outputs and inputs (``network_data_format`` of its metadata) call for:

* label maps (output format ``"segmentation"``) of one image: :class:`BundlePredictor`, returning label maps in the
  input's own voxel grid (same shape, same affine, as a MetaTensor);
* label maps of several co-registered modalities (``inputs.image.num_channels > 1``, e.g. T1 + FLAIR):
  :class:`MultiModalPredictor`, ``predict([t1, flair])``;
* any other output (probabilities, reconstructed images): :class:`DensePredictor`, returning the network output
  itself after the bundle's own post-processing, in the input's grid.

A bundle without a declared output format is a dense one when its inference config defines ``predict_postprocess``,
and multi-modal when its network has several input channels.

Inputs are checked before the network sees them, so that a bad input fails with an error naming it instead of a
silently wrong result or a crash deep in MONAI/PyTorch: a missing file, a folder, an unreadable (e.g. truncated)
file, NaN or infinite voxels (refused: one NaN voxel would turn the whole prediction into one class), the wrong
number of spatial dimensions (a 2D file for a 3D bundle) and extra channels or volumes (a 4D file for a
single-channel bundle).  A bundle for 2D images also takes volumes ``(1, X, Y, Z)``, predicted slice by slice along
the last axis; 2D networks that the bundle applies to volumes with MONAI's ``SliceInferer`` (as the NeRD and N-Jet
bundles do) take volumes.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.config import PathLike
from monai.data import MetaTensor
from monai.inferers import SliceInferer
from monai.transforms import Compose, Invertd, LoadImaged

from monai_implicit.transforms.checks import CheckedLoadImaged, ImageReadError, NonFiniteImageError, check_finite
from monai_implicit.utils import check_option, check_positive_int

__all__ = ["BundlePredictor", "DensePredictor", "MultiModalPredictor", "load"]

#: output formats (``network_data_format.outputs.pred.format``) that :func:`load` serves as label maps
LABEL_FORMATS = ("segmentation", "labels")


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
        #: the temporary folder of a bundle loaded from a ``.zip`` (kept as long as the predictor), else None
        self.extracted: Optional[tempfile.TemporaryDirectory] = None

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


class DensePredictor(BundlePredictor):
    """Like :class:`BundlePredictor`, but :meth:`predict` returns the (post-processed) network output.

    :class:`BundlePredictor` returns ``argmax`` label maps, which is right for segmentation but meaningless for a
    one-channel localisation logit or a reconstructed MR image.  A bundle configures this predictor in its
    ``configs/inference.json`` with ``predict_postprocess`` (a callable on the output ``(C, *spatial)``, e.g. a
    sigmoid; ``"$lambda x: x"`` for none), optionally ``predict_loader`` (a ``LoadImaged("image", ...)`` for formats
    that need a specific reader, e.g. channel-first ``.npy`` lines) and ``network_extra_inputs`` (keyword arguments
    of the network taken from the preprocessed item, ``{"kspace": "kspace", "mask": "mask"}`` for a data-consistent
    reconstruction; the mapping MONAI's ``PrepareBatchExtraInput`` takes).

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


class MultiModalPredictor(BundlePredictor):
    """:class:`BundlePredictor` for ``in_channels`` modalities and images of ``spatial_dims`` dimensions.

    The WMH bundle takes two co-registered modalities (T1 and FLAIR) as two channels of a 2D network applied to
    volumes slice by slice ("NeRD: Neural Representation of Distribution for Medical Image Segmentation", Sec. 3.2).

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
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.spatial_dims = check_option(spatial_dims, (1, 2, 3), "spatial_dims")

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


def _bundle_folder(bundle: PathLike) -> tuple[Path, Optional[tempfile.TemporaryDirectory]]:
    """The bundle folder of a folder or of a ``.zip`` archive (extracted to a temporary folder, returned with it).

    An archive holds the bundle at its top level or in one top-level folder (as ``monai.bundle`` zips it)."""
    path = Path(bundle)
    if not (path.is_file() and zipfile.is_zipfile(path)):
        return path, None
    tmp = tempfile.TemporaryDirectory(prefix="monai_implicit_bundle_")
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp.name)
    top = Path(tmp.name)
    folders = [p for p in top.iterdir() if p.is_dir()]
    if not (top / "configs").is_dir() and len(folders) == 1 and (folders[0] / "configs").is_dir():
        top = folders[0]
    if not (top / "configs").is_dir():
        tmp.cleanup()
        raise ValueError(f"bundle archive {str(path)!r} has no configs/ folder at its top level or in one folder.")
    return top, tmp


def _declared(metadata: Mapping, *keys: str) -> Any:
    """``metadata["network_data_format"][keys...]``, None where any level is missing."""
    value: Any = metadata.get("network_data_format")
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def load(
    bundle_dir_or_zip: PathLike,
    device: Optional[Union[str, torch.device]] = None,
    config_file: PathLike = "configs/inference.json",
    checkpoint: PathLike = "models/model.pt",
    bake: bool = True,
    **override: Any,
) -> BundlePredictor:
    """Load a trained bundle of this project as the predictor its declared outputs need (see the module docstring).

    Args:
        bundle_dir_or_zip: the bundle folder (with ``configs/`` and ``models/``), or a ``.zip`` archive of it.
        device: default CUDA when available, else CPU.
        config_file, checkpoint: relative to the bundle folder unless absolute; ``metadata.json`` is read next to
            the config file, else from the bundle's ``configs/``; ``bundle_root`` is the bundle folder.
        bake: replace implicit convolutions by plain ones (same output, faster).
        override: config overrides, e.g. ``{"sw_batch_size": 8}`` (ids as on the command line); an id that is not in
            the inference config raises a ValueError naming it (instead of being silently ignored).

    Returns:
        A :class:`BundlePredictor`, :class:`MultiModalPredictor` or :class:`DensePredictor` holding the trained
        network in eval mode.

    Raises:
        FileNotFoundError: the config file or the checkpoint does not exist (the message names it).
        ValueError: an ``override`` id that is not in the config (the message names it); a ``.zip`` that holds no
            bundle.
        CheckpointReadError: the checkpoint is truncated or corrupt (the message names it).

    Example::

        predictor = monai_implicit.bundles.load("bundles/hyperunet_lits")
        seg = predictor.predict("ct.nii.gz")  # MetaTensor label map, same shape and affine as the CT
    """
    root, extracted = _bundle_folder(bundle_dir_or_zip)
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
    network = _trained_network(parser, ckpt, bake)
    transforms = parser.get_parsed_content("preprocess_transforms")
    inferer = parser.get_parsed_content("inferer")
    def optional(key: str) -> Any:
        return parser.get_parsed_content(key) if key in parser else None

    metadata = parser.get("_meta_", {})
    output_format = _declared(metadata, "outputs", "pred", "format")
    dense = output_format not in LABEL_FORMATS if output_format is not None else "predict_postprocess" in parser
    predictor: BundlePredictor
    if dense:
        loader = optional("predict_loader")
        if loader is not None and not isinstance(loader, (LoadImaged, Callable)):  # type: ignore[arg-type]
            raise TypeError(
                f"predict_loader must be a dictionary loader such as LoadImaged, got {type(loader).__name__}."
            )
        predictor = DensePredictor(
            network, transforms, inferer, device, postprocess=optional("predict_postprocess"), loader=loader,
            extra_inputs=optional("network_extra_inputs"),
        )
    else:
        predictor = BundlePredictor(network, transforms, inferer, device)
        in_channels = _declared(metadata, "inputs", "image", "num_channels")
        if in_channels is None:
            in_channels = getattr(network, "in_channels", None)
        if isinstance(in_channels, int) and in_channels > 1:
            predictor = MultiModalPredictor(
                network, transforms, inferer, device, in_channels, spatial_dims=predictor.image_spatial_dims
            )
    predictor.extracted = extracted  # an extracted archive lives as long as its predictor
    return predictor


def _trained_network(parser: ConfigParser, ckpt: Path, bake: bool) -> torch.nn.Module:
    """``network_def`` of ``parser`` with the weights of ``ckpt``, in eval mode, baked unless ``bake=False``."""
    from ignite.handlers import Checkpoint

    from monai_implicit.handlers.checkpoints import read_checkpoint
    from monai_implicit.networks.utils import bake as bake_fn

    network = parser.get_parsed_content("network_def")
    state = read_checkpoint(ckpt, map_location="cpu")  # torch.load whose errors name a truncated/corrupt file
    Checkpoint.load_objects(to_load={"model": network}, checkpoint=state)
    network = network.eval()
    return bake_fn(network) if bake else network
