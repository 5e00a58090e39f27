"""MONAI Label app serving the package's segmentation bundles (``main.py``; needs the ``label`` extra).

Only the bundle discovery and the training planner are imported here; they do not need MONAI Label::

    monailabel start_server --app monai_implicit/apps/label --studies /data/ct --conf models hyperunet_lits
"""

from .bundles import SegmentationBundle, default_bundles_dir, find_segmentation_bundles, select_bundles
from .training import TrainPlan, check_overrides, plan_training, run_training, validation_interval, write_datalist
