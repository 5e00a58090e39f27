"""``python -m monai_implicit.apps.label {init,start_server}``: see :mod:`monai_implicit.apps.label.cli`."""

from monai_implicit.apps.label.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
