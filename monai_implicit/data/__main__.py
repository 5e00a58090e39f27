"""Command line: write the embedded synthetic datasets, or the datalist of a real dataset, outside a bundle.

Examples::

    python -m monai_implicit.data lits --out data/synthetic_lits --num-cases 10
    python -m monai_implicit.data lits-datalist --lits-dir /data/LiTS --out /data/LiTS/dataset.json
    python -m monai_implicit.data wmh --out data/synthetic_wmh          # WMH challenge layout
    python -m monai_implicit.data wmh-datalist --wmh-dir /data/wmh/training
    python -m monai_implicit.data heart --out data/synthetic_la         # MSD Task02_Heart layout
    python -m monai_implicit.data brain --out data/synthetic_brain      # 2D brain phantoms (CS-MRI)
    python -m monai_implicit.data rf --out data/synthetic_rf            # simulated RF lines
    python -m monai_implicit.data mni152-slices --out data/mni152 --size 64   # MNI152 template slices (nilearn)

Each prints the path of the dataset.json it wrote; bad arguments exit with status 2 and a message.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from monai_implicit.data.heart import make_la_like_dataset
from monai_implicit.data.lits import lits_datalist, make_lits_like_dataset
from monai_implicit.data.mni import make_mni152_dataset
from monai_implicit.data.phantoms import make_phantom_dataset
from monai_implicit.data.rf import make_rf_dataset
from monai_implicit.data.wmh import make_wmh_like_dataset, wmh_datalist


def _common(parser: argparse.ArgumentParser, num_name: str, num_default: int) -> None:
    parser.add_argument("--out", required=True, help="output folder (written with its dataset.json)")
    parser.add_argument(num_name, type=int, default=num_default)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monai_implicit.data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    lits = sub.add_parser("lits", help="write a synthetic LiTS-like dataset in the MSD Task03_Liver layout")
    lits.add_argument("--out", required=True, help="output folder (imagesTr/, labelsTr/, dataset.json)")
    lits.add_argument("--num-cases", type=int, default=10)
    lits.add_argument("--seed", type=int, default=0)
    lits.add_argument("--fov-mm", type=float, nargs=3, default=(160.0, 160.0, 120.0), metavar=("X", "Y", "Z"))
    lits.add_argument("--spacing", type=float, nargs=3, default=None, metavar=("X", "Y", "Z"),
                      help="voxel size in mm (default: drawn per case, anisotropic)")
    lits.add_argument("--noise-hu", type=float, default=None, help="noise std in HU (default: 10-25 HU per case)")
    lits.add_argument("--overwrite", action="store_true")
    conv = sub.add_parser("lits-datalist", help="datalist (dataset.json) for the original LiTS volume-N/segmentation-N")
    conv.add_argument("--lits-dir", required=True, help="folder with volume-N.nii[.gz] and segmentation-N.nii[.gz]")
    conv.add_argument("--out", default=None, help="datalist path (default: LITS_DIR/dataset.json)")
    wmh = sub.add_parser("wmh", help="write a synthetic dataset in the WMH challenge layout (T1, FLAIR, wmh)")
    _common(wmh, num_name="--num-cases", num_default=12)
    wmh.add_argument("--fov-mm", type=float, nargs=3, default=(192.0, 228.0, 48.0), metavar=("X", "Y", "Z"))
    wmh_list = sub.add_parser("wmh-datalist", help="datalist for data in the WMH challenge layout")
    wmh_list.add_argument("--wmh-dir", required=True, help="folder holding <site>/<subject>/pre/{T1,FLAIR}.nii.gz")
    wmh_list.add_argument("--out", default=None, help="datalist path (default: WMH_DIR/dataset.json)")
    heart = sub.add_parser("heart", help="write a synthetic left-atrium dataset in the MSD Task02_Heart layout")
    _common(heart, num_name="--num-cases", num_default=12)
    heart.add_argument("--fov-mm", type=float, nargs=3, default=(200.0, 200.0, 110.0), metavar=("X", "Y", "Z"))
    heart.add_argument("--num-test", type=int, default=0, help="unlabelled test volumes (imagesTs/)")
    brain = sub.add_parser("brain", help="write 2D brain phantoms (fully sampled magnitude images, CS-MRI)")
    _common(brain, num_name="--num-images", num_default=48)
    brain.add_argument("--num-test", type=int, default=4, help="test images (imagesTs/)")
    brain.add_argument("--shape", type=int, nargs="+", default=[128], help="image size (one or two numbers)")
    rf = sub.add_parser("rf", help="write simulated ultrasound RF lines with micro-bubble positions")
    _common(rf, num_name="--num-lines", num_default=64)
    rf.add_argument("--num-validation", type=int, default=16)
    rf.add_argument("--length", type=int, default=1024, help="samples per line")
    mni = sub.add_parser("mni152-slices", help="write 2D slices of the MNI152 T1 template (real anatomy; needs the "
                         "data extra: pip install 'monai-implicit[data]')")
    _common(mni, num_name="--num-phantoms", num_default=0)
    mni.add_argument("--size", type=int, nargs="+", default=[64], help="slice size H [W] (default 64)")
    mni.add_argument("--native", action="store_true", help="full 1 mm template slices instead of --size")
    mni.add_argument("--orientations", nargs="+", default=["axial", "coronal"],
                     choices=["axial", "coronal", "sagittal"])
    mni.add_argument("--num-validation", type=int, default=4, help="validation slices per orientation")
    mni.add_argument("--num-test", type=int, default=4, help="test slices per orientation (imagesTs/)")
    mni.add_argument("--slice-step", type=int, default=2, help="take every N-th slice")
    mni.add_argument("--gap-mm", type=float, default=10.0, help="least distance of a training to a held-out slice")
    mni.add_argument("--min-brain-fraction", type=float, default=0.3,
                     help="skip slices whose brain area is below this fraction of the largest one")
    mni.add_argument("--margin-mm", type=float, default=8.0, help="background around the brain's bounding box")
    mni.add_argument("--noise", type=float, default=0.0, help="Rician noise level (0: the template as is)")
    args = parser.parse_args(argv)
    try:
        if args.command == "lits":
            path = make_lits_like_dataset(
                args.out, num_cases=args.num_cases, seed=args.seed, fov_mm=args.fov_mm, spacing=args.spacing,
                noise_hu=args.noise_hu, overwrite=args.overwrite,
            )
        elif args.command == "lits-datalist":
            path = lits_datalist(args.lits_dir, args.out)
        elif args.command == "wmh":
            path = make_wmh_like_dataset(
                args.out, num_cases=args.num_cases, seed=args.seed, fov_mm=args.fov_mm, overwrite=args.overwrite
            )
        elif args.command == "wmh-datalist":
            path = wmh_datalist(args.wmh_dir, args.out)
        elif args.command == "heart":
            path = make_la_like_dataset(
                args.out, num_cases=args.num_cases, seed=args.seed, fov_mm=args.fov_mm, num_test=args.num_test,
                overwrite=args.overwrite,
            )
        elif args.command == "brain":
            shape = args.shape[0] if len(args.shape) == 1 else args.shape
            path = make_phantom_dataset(
                args.out, num_images=args.num_images, num_test=args.num_test, shape=shape, seed=args.seed,
                overwrite=args.overwrite,
            )
        elif args.command == "mni152-slices":
            size = None if args.native else (args.size[0] if len(args.size) == 1 else args.size)
            path = make_mni152_dataset(
                args.out, size=size, orientations=args.orientations, num_validation=args.num_validation,
                num_test=args.num_test, slice_step=args.slice_step, gap_mm=args.gap_mm,
                min_brain_fraction=args.min_brain_fraction, margin_mm=args.margin_mm, noise=args.noise,
                num_phantoms=args.num_phantoms, seed=args.seed, overwrite=args.overwrite,
            )
        else:
            path = make_rf_dataset(
                args.out, num_lines=args.num_lines, num_validation=args.num_validation, length=args.length,
                seed=args.seed, overwrite=args.overwrite,
            )
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
