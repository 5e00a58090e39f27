"""Which bundles the MONAI Label app serves: discovery of segmentation bundles and their label names.

The bundles are the sub-folders of one folder, named by MONAI Label's ``--conf bundles_dir DIR``; without it, the
repository's ``bundles/`` next to the app folder (``apps/label/../../bundles``, a source checkout).  The folder is
never looked up through the ``monai_implicit`` package, so a non-editable install serves the same bundles.

A folder ``<bundles_dir>/<name>/`` is served when it is a MONAI bundle whose ``configs/metadata.json`` declares a
segmentation output (``network_data_format.outputs.<key>.format == "segmentation"`` with a ``channel_def``) and
that has a ``configs/inference.json``.  The label names come from the output's ``channel_def`` (MONAI bundle
specification), so a bundle needs no MONAI Label specific file.  Nothing here imports MONAI Label: the discovery is
usable (and tested) without the ``label`` extra.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from monai.config import PathLike

__all__ = [
    "APP_DIR",
    "SegmentationBundle",
    "default_bundles_dir",
    "find_segmentation_bundles",
    "read_segmentation_bundle",
    "select_bundles",
]

logger = logging.getLogger(__name__)

#: the app folder (``apps/label``): MONAI Label's ``--app``, holding ``main.py`` and this package
APP_DIR = Path(__file__).resolve().parents[1]

#: channel names that are not offered as labels to annotate (MONAI Label apps list foreground classes only)
BACKGROUND_NAMES = frozenset({"background", "bg", "_background_"})


@dataclass(frozen=True)
class SegmentationBundle:
    """A bundle folder served by the MONAI Label app.

    Attributes:
        name: folder name; the MONAI Label model name (``/infer/<name>``, ``/train/<name>``).
        root: absolute bundle folder.
        labels: foreground label name -> label value in the predicted label map (from ``channel_def``), e.g.
            ``{"liver": 1, "tumour": 2}``; the format MONAI Label clients (3D Slicer, OHIF) expect.
        spatial_dims: number of spatial dimensions of the network input (from ``spatial_shape``).
        input_channels: the names of the input's channels (modalities), from the input's ``num_channels`` and
            ``channel_def``, e.g. ``("T1", "FLAIR")``; one name (``("image",)`` without a ``channel_def``) for a
            single-channel network.
        description, version: from ``metadata.json``.
        metadata: the whole ``metadata.json``.
    """

    name: str
    root: Path
    labels: dict[str, int]
    spatial_dims: int
    input_channels: tuple[str, ...] = ("image",)
    description: str = ""
    version: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def configs(self) -> Path:
        return self.root / "configs"

    @property
    def inference_config(self) -> Path:
        return self.configs / "inference.json"

    @property
    def metadata_file(self) -> Path:
        return self.configs / "metadata.json"

    @property
    def train_config(self) -> Optional[Path]:
        """``configs/train.json`` when the bundle can be trained, else None."""
        path = self.configs / "train.json"
        return path if path.is_file() else None

    @property
    def multi_gpu_config(self) -> Optional[Path]:
        """``configs/multi_gpu_train.json`` (merged over train.json for ``torchrun``), else None."""
        path = self.configs / "multi_gpu_train.json"
        return path if path.is_file() else None

    @property
    def logging_config(self) -> Optional[Path]:
        path = self.configs / "logging.conf"
        return path if path.is_file() else None

    @property
    def checkpoint(self) -> Path:
        """The served weights: ``models/model.pt`` (the MONAI bundle convention; written by training)."""
        return self.root / "models" / "model.pt"


def default_bundles_dir() -> Path:
    """The default of ``--conf bundles_dir``: ``bundles/`` of the repository that holds the app folder.

    It does not depend on where ``monai_implicit`` is installed; it exists in a source checkout.
    """
    return APP_DIR.parents[1] / "bundles"


def _bundles_folder(bundles_dir: Optional[PathLike]) -> Path:
    """``bundles_dir`` (default :func:`default_bundles_dir`) as a path; FileNotFoundError naming the option when it
    is not a folder."""
    folder = Path(bundles_dir).expanduser() if bundles_dir is not None else default_bundles_dir()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        default = "" if bundles_dir is not None else " (the default: bundles/ of a source checkout around the app)"
        raise FileNotFoundError(
            f"bundles folder {str(folder)!r}{default} {what}; name the folder of the bundles with "
            "--conf bundles_dir DIR."
        )
    return folder


def _segmentation_output(metadata: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    outputs = metadata.get("network_data_format", {}).get("outputs", {})
    if not isinstance(outputs, dict) or not outputs:
        raise ValueError("metadata.json has no network_data_format.outputs")
    for key, spec in outputs.items():
        if isinstance(spec, dict) and str(spec.get("format", "")).lower() == "segmentation":
            return key, spec
    formats = {k: v.get("format") if isinstance(v, dict) else v for k, v in outputs.items()}
    raise ValueError(f"metadata.json declares no segmentation output (output formats: {formats})")


def _input_channels(name: str, inputs: Any) -> tuple[str, ...]:
    """Channel names of the first network input: ``channel_def`` values in channel order, one per ``num_channels``."""
    spec = next((v for v in inputs.values() if isinstance(v, dict)), {}) if isinstance(inputs, dict) else {}
    count = spec.get("num_channels", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"bundle {name!r}: the input's num_channels must be a positive integer, got {count!r}.")
    channel_def = spec.get("channel_def") if isinstance(spec.get("channel_def"), dict) else {}
    if count == 1:
        return (str(channel_def.get("0", "image")),)
    names = tuple(str(channel_def.get(str(i), i)) for i in range(count))
    if len(set(names)) != count:
        raise ValueError(f"bundle {name!r}: the input's channel_def names its {count} channels twice: {names}.")
    return names


def read_segmentation_bundle(root: PathLike) -> SegmentationBundle:
    """Read one bundle folder; raise ValueError / FileNotFoundError saying why it cannot be served.

    Args:
        root: bundle folder with ``configs/metadata.json`` and ``configs/inference.json``.
    """
    folder = Path(root).expanduser().resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"bundle folder {str(folder)!r} does not exist.")
    meta_file = folder / "configs" / "metadata.json"
    for required in (meta_file, folder / "configs" / "inference.json"):
        if not required.is_file():
            raise FileNotFoundError(f"bundle {folder.name!r} has no {required.relative_to(folder)}.")
    try:
        metadata = json.loads(meta_file.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"bundle {folder.name!r}: {meta_file} is not valid JSON ({e}).") from e
    try:
        key, spec = _segmentation_output(metadata)
    except ValueError as e:
        raise ValueError(f"bundle {folder.name!r}: {e}.") from e
    channel_def = spec.get("channel_def")
    if not isinstance(channel_def, dict) or not channel_def:
        raise ValueError(f"bundle {folder.name!r}: output {key!r} has no channel_def naming the label values.")
    labels: dict[str, int] = {}
    for value, name in channel_def.items():
        try:
            index = int(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"bundle {folder.name!r}: channel_def keys must be label values (integers), got {value!r}."
            ) from None
        if str(name).lower() in BACKGROUND_NAMES:
            continue
        if name in labels:
            raise ValueError(f"bundle {folder.name!r}: label name {name!r} appears twice in channel_def.")
        labels[str(name)] = index
    if not labels:
        raise ValueError(f"bundle {folder.name!r}: channel_def {channel_def} names no foreground label.")
    inputs = metadata.get("network_data_format", {}).get("inputs", {})
    shapes = [v.get("spatial_shape") for v in inputs.values() if isinstance(v, dict) and v.get("spatial_shape")]
    spatial_dims = len(shapes[0]) if shapes else len(spec.get("spatial_shape", [])) or 3
    return SegmentationBundle(
        name=folder.name,
        root=folder,
        labels=dict(sorted(labels.items(), key=lambda kv: kv[1])),
        spatial_dims=spatial_dims,
        input_channels=_input_channels(folder.name, inputs),
        description=str(metadata.get("description", metadata.get("name", folder.name))),
        version=str(metadata.get("version", "")),
        metadata=metadata,
    )


def find_segmentation_bundles(bundles_dir: Optional[PathLike] = None) -> dict[str, SegmentationBundle]:
    """Every servable bundle under ``bundles_dir`` (default :func:`default_bundles_dir`), by name.

    Folders that are not segmentation bundles are skipped with a log message saying why.
    """
    folder = _bundles_folder(bundles_dir)
    found: dict[str, SegmentationBundle] = {}
    for child in sorted(folder.iterdir()):
        if not child.is_dir() or child.name.startswith((".", "_")):
            continue
        try:
            found[child.name] = read_segmentation_bundle(child)
        except (FileNotFoundError, ValueError) as e:
            logger.info(f"not served: {e}")
    return found


def select_bundles(
    bundles_dir: Optional[PathLike] = None, models: Union[None, str, Sequence[str]] = None
) -> list[SegmentationBundle]:
    """The bundles named by ``models`` (MONAI Label ``--conf models a,b``; None, "" or "all": every bundle).

    Raises:
        ValueError: a named bundle does not exist or is not a segmentation bundle (the message says why and lists
            the servable ones), or no bundle is servable at all.
        FileNotFoundError: ``bundles_dir`` (or the default) is not a folder; the message names ``--conf bundles_dir``.
    """
    folder = _bundles_folder(bundles_dir)
    available = find_segmentation_bundles(folder)
    if isinstance(models, str):
        names = [m.strip() for m in models.split(",") if m.strip()]
    elif models is None:
        names = []
    else:
        names = [str(m).strip() for m in models]
    if not names or names == ["all"]:
        if not available:
            raise ValueError(
                f"no segmentation bundle (configs/metadata.json + configs/inference.json) in {folder} "
                "(--conf bundles_dir)."
            )
        return list(available.values())
    selected = []
    for name in dict.fromkeys(names):
        if Path(name).name != name or name.startswith((".", "_")):
            raise ValueError(f"model names are bundle folder names in {folder}, got {name!r}.")
        if name in available:
            selected.append(available[name])
            continue
        try:  # say why the folder is not served
            selected.append(read_segmentation_bundle(folder / name))
        except (FileNotFoundError, ValueError) as e:
            raise ValueError(
                f"cannot serve model {name!r}: {e} Servable bundles in {folder}: {sorted(available)}."
            ) from None
    return selected
