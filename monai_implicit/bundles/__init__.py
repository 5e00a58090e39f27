"""Helpers shared by the MONAI bundles of this package, and a Python API to use a trained bundle.

* :func:`bundle_root`: paths relative to the bundle, whatever the working directory;
* :func:`ensure_dataset`, :func:`load_datalist`, :func:`train_val_split`, :class:`CheckLabelValuesd`: embedded
  data, the training/validation split and early, named errors on bad data;
* :class:`AtomicCheckpointSaver`, :class:`ResumeFromCheckpoint`, :func:`latest_checkpoint`: interruption-safe,
  resumable training;
* :func:`training_plan`: a run's configuration from the dataset fingerprint, kept with the checkpoints;
* :func:`select_channels`, :func:`log_training_summary`: config helpers;
* :func:`load`: ``load(bundle_dir).predict(...)`` for every bundle (label maps, multi-modal inputs, dense outputs).
"""

from .checkpoints import AtomicCheckpointSaver, ResumeFromCheckpoint, latest_checkpoint
from .data import (
    CheckLabelValuesD,
    CheckLabelValuesd,
    CheckLabelValuesDict,
    ensure_dataset,
    image_datalist,
    load_datalist,
    train_val_split,
)
from .export import BakeForExport
from .paths import bundle_root, bundle_root_of_config
from .planning import training_plan
from .predictor import BundlePredictor, load, load_label_predictor
from .robustness import noise_robustness, plot_robustness
from .utils import log_training_summary, select_channels
