"""MONAI Label app serving the package's segmentation bundles (``main.py``; needs the ``label`` extra).

Only the bundle discovery, the training planner and the command line are imported here; they do not need MONAI
Label.  Serve from an app folder outside the package (MONAI Label writes its working folders into it)::

    python -m monai_implicit.apps.label start_server --app ~/monai_implicit_app --studies /data/ct \
        --conf models hyperunet_lits
"""

from .bundles import SegmentationBundle, default_bundles_dir, find_segmentation_bundles, select_bundles
from .cli import init_app_dir
from .training import (
    ALLOWED_OVERRIDES,
    OverrideError,
    OverrideRule,
    TrainPlan,
    check_overrides,
    plan_training,
    run_training,
    validation_interval,
    write_datalist,
)
