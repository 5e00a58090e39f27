"""What is about the MONAI bundles of this package: where a bundle lives, config helpers and the predictor API.

* :func:`bundle_root`, :func:`bundle_root_of_config`: paths relative to the bundle, whatever the working directory;
* :func:`training_plan`: a run's configuration from the dataset fingerprint, kept with the checkpoints;
* :func:`select_channels`, :func:`log_training_summary`: config helpers;
* :func:`load`: ``load(bundle_dir_or_zip).predict(...)`` for every bundle (label maps, multi-modal inputs, dense
  outputs), with :class:`BundlePredictor`, :class:`MultiModalPredictor`, :class:`DensePredictor`.

Library code that earlier lived here has its own home (datalists in :mod:`monai_implicit.data`, label checks and
writers in :mod:`monai_implicit.transforms`, checkpoint handlers in :mod:`monai_implicit.handlers`, the masked loss
in :mod:`monai_implicit.losses`, studies in :mod:`monai_implicit.evaluation`, :class:`BakeForExport` in
:mod:`monai_implicit.networks.utils`).  The old names, ``monai_implicit.bundles.X`` and
``monai_implicit.bundles.<module>.X``, still resolve to the new homes with a ``DeprecationWarning`` naming them, so
that existing configs and scripts keep running; nothing of the new homes is imported until such a name is used.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from typing import Any

from .paths import bundle_root, bundle_root_of_config
from .planning import training_plan
from .predictor import BundlePredictor, DensePredictor, MultiModalPredictor, load
from .utils import log_training_summary, select_channels

__all__ = [
    "bundle_root",
    "bundle_root_of_config",
    "training_plan",
    "select_channels",
    "log_training_summary",
    "BundlePredictor",
    "DensePredictor",
    "MultiModalPredictor",
    "load",
]

_DATALIST = "monai_implicit.data.datalist"
_CHECKPOINTS = "monai_implicit.handlers.checkpoints"
_CHECKS = "monai_implicit.transforms.checks"
_ROBUSTNESS = "monai_implicit.evaluation.robustness"

#: former module of this package -> the modules its public names moved to (searched in order)
_MOVED_MODULES: dict[str, tuple[str, ...]] = {
    "checkpoints": (_CHECKPOINTS,),
    "data": (_DATALIST, _CHECKS),
    "layouts": (_DATALIST,),
    "masking": ("monai_implicit.transforms.labels", "monai_implicit.losses.masked"),
    "export": ("monai_implicit.networks.utils",),
    "robustness": (_ROBUSTNESS, "monai_implicit.evaluation.reports"),
    "localization": ("monai_implicit.evaluation.localization", "monai_implicit.transforms.io"),
    "reconstruction": (_ROBUSTNESS, "monai_implicit.transforms.kspace.io", "monai_implicit.networks.nets"),
    "multimodal": ("monai_implicit.transforms.io", f"{__name__}.predictor"),
    "dense_predictor": (f"{__name__}.predictor",),
}

#: names that were importable from this package itself -> their new module
_MOVED_NAMES: dict[str, str] = {
    **dict.fromkeys(
        ("AtomicCheckpointSaver", "ResumeFromCheckpoint", "latest_checkpoint", "BestMetricState", "CheckpointLoader",
         "CheckpointReadError", "RNGState", "epoch_checkpoints", "read_checkpoint"),
        _CHECKPOINTS,
    ),
    **dict.fromkeys(
        ("ensure_dataset", "ensure_layout_dataset", "image_datalist", "load_datalist", "train_val_split"), _DATALIST
    ),
    **dict.fromkeys(("CheckLabelValuesd", "CheckLabelValuesD", "CheckLabelValuesDict"), _CHECKS),
    "BakeForExport": "monai_implicit.networks.utils",
    "noise_robustness": _ROBUSTNESS,
    "plot_robustness": _ROBUSTNESS,
    # the reader of the sweeps' CSV tables was renamed when the three copies of it became one
    "read_robustness_tables": "monai_implicit.evaluation.reports",
}
#: old name -> new name, where the new home renamed it (``load_bundle`` was ``load`` under another name)
_RENAMED = {"read_robustness_tables": "read_tables", "load_bundle": "load"}


def _moved(old: str, module: str, name: str) -> Any:
    """``module.name``, with a DeprecationWarning telling the user of ``old`` where it lives now."""
    value = getattr(importlib.import_module(module), _RENAMED.get(name, name))
    warnings.warn(
        f"{old} moved to {module}.{_RENAMED.get(name, name)}; the old name will be removed.",
        DeprecationWarning,
        stacklevel=3,
    )
    return value


class _MovedModule(types.ModuleType):
    """Stand-in for a former submodule: each attribute is looked up in the modules its names moved to."""

    def __init__(self, name: str, homes: tuple[str, ...]) -> None:
        super().__init__(name, f"Deprecated: its names moved to {', '.join(homes)}.")
        self._homes = homes

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        for home in self._homes:
            if hasattr(importlib.import_module(home), _RENAMED.get(attr, attr)):
                return _moved(f"{self.__name__}.{attr}", home, attr)
        raise AttributeError(f"module {self.__name__!r} (moved to {', '.join(self._homes)}) has no {attr!r}.")


# registered without importing anything, so that ``import monai_implicit.bundles.masking`` (a former config's
# ``"$import ..."``) still works
for _old, _homes in _MOVED_MODULES.items():
    sys.modules.setdefault(f"{__name__}.{_old}", _MovedModule(f"{__name__}.{_old}", _homes))


def __getattr__(name: str) -> Any:
    if name in _MOVED_NAMES:
        return _moved(f"{__name__}.{name}", _MOVED_NAMES[name], name)
    if name in _MOVED_MODULES:
        return sys.modules[f"{__name__}.{name}"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
