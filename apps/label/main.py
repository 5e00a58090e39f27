"""The MONAI Label app of monai_implicit: ``monailabel start_server --app apps/label --studies DIR``.

MONAI Label loads this file by path and serves the MONAILabelApp subclass it finds here:
:class:`~monai_implicit_label.main.MonaiImplicitApp`, from the ``monai_implicit_label`` package next to this file
(the app's code, never installed; it uses the installed ``monai_implicit``).  The class is imported, not defined
here, because MONAI Label executes this file again for every background task: a class defined here would be a new
class each time.  ``python apps/label/cli.py start_server --studies DIR`` serves this folder with safer defaults
(127.0.0.1, a guard against requests from other web origins); app options, e.g. ``--conf bundles_dir DIR``, are
listed in :mod:`monai_implicit_label.main`.
"""

from monai_implicit_label.main import MonaiImplicitApp  # noqa: F401
