"""Synthetic datasets written in the layouts real datasets use (MSD / LiTS / WMH), slices of the MNI152 template
(real anatomy shipped by nilearn), layout converters, checked datalists (:mod:`monai_implicit.data.datalist`), and the
dataset fingerprint with the training plan derived from it (self-configuration)."""

from .datalist import ensure_dataset, ensure_layout_dataset, image_datalist, load_datalist, train_val_split
from .fingerprint import (
    CPU_VOXEL_BUDGET,
    FINGERPRINT_FILE,
    FINGERPRINT_VERSION,
    PLAN_FILE,
    dataset_fingerprint,
    gpu_voxel_budget,
    load_plan,
    plan_segmentation,
)
from .heart import LA_LABELS, make_la_like_case, make_la_like_dataset
from .lits import LITS_LABELS, lits_datalist, make_lits_like_case, make_lits_like_dataset
from .mni import (
    BRAIN_THRESHOLD,
    MNI152_ORIENTATIONS,
    MNI152_SHAPE,
    load_mni152_template,
    make_mni152_dataset,
    mni152_slices,
    mni152_split,
)
from .phantoms import PHANTOM_INTENSITIES, make_brain_phantom, make_phantom_dataset
from .wmh import WMH_LABELS, WMH_SITES, make_wmh_like_case, make_wmh_like_dataset, wmh_datalist, wmh_subjects
