"""The MONAI Label app of ``monai_implicit``: the code of the app folder ``apps/label`` (not installed).

``apps/label/main.py`` exports :class:`~monai_implicit_label.main.MonaiImplicitApp` (needs MONAI Label, the
``label`` extra); the app uses the installed ``monai_implicit`` package, which never imports this one.  Only the
bundle discovery, the training planner and the command line are imported here; they do not need MONAI Label::

    python apps/label/cli.py start_server --studies /data/ct --conf models hyperunet_lits \
        --conf bundles_dir ~/monai_implicit/bundles
"""

from .bundles import APP_DIR, SegmentationBundle, default_bundles_dir, find_segmentation_bundles, select_bundles
from .cli import check_app_folder, init_app_dir
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
