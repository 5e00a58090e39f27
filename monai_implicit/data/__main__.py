"""Command line: ``python -m monai_implicit.data lits --out DIR`` and ``python -m monai_implicit.data lits-datalist``.

Examples::

    python -m monai_implicit.data lits --out data/synthetic_lits --num-cases 10
    python -m monai_implicit.data lits-datalist --lits-dir /data/LiTS --out /data/LiTS/dataset.json
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from monai_implicit.data.lits import lits_datalist, make_lits_like_dataset


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
    lits.add_argument("--noise-hu", type=float, default=12.0)
    lits.add_argument("--overwrite", action="store_true")
    conv = sub.add_parser("lits-datalist", help="datalist (dataset.json) for the original LiTS volume-N/segmentation-N")
    conv.add_argument("--lits-dir", required=True, help="folder with volume-N.nii[.gz] and segmentation-N.nii[.gz]")
    conv.add_argument("--out", default=None, help="datalist path (default: LITS_DIR/dataset.json)")
    args = parser.parse_args(argv)
    try:
        if args.command == "lits":
            path = make_lits_like_dataset(
                args.out, num_cases=args.num_cases, seed=args.seed, fov_mm=args.fov_mm, spacing=args.spacing,
                noise_hu=args.noise_hu, overwrite=args.overwrite,
            )
        else:
            path = lits_datalist(args.lits_dir, args.out)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
