"""``python apps/label/cli.py {init,start_server} ...``: the command line of the MONAI Label app.

See :mod:`monai_implicit_label.cli`.  It runs from any folder, with ``monai_implicit`` installed (editable or not)
and the ``label`` extra.
"""

from monai_implicit_label.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
