"""Where a bundle lives, so that configs can use paths relative to the bundle instead of the working directory.

The MONAI model zoo writes ``"bundle_root": "."`` in its configs, which ties every output to the folder the command
is started from.  Our bundles write ``"bundle_root": "$monai_implicit.bundles.bundle_root()"``, which resolves to the
folder holding ``configs/`` of the config file being run, whatever the working directory:

* ``python -m monai.bundle run``, ``ConfigWorkflow``: the workflow's ``config_root_path`` (the same rule MONAI uses
  to put the bundle on ``sys.path`` in ``ConfigWorkflow.run``);
* ``python -m monai.bundle ckpt_export`` / ``verify_net_in_out`` / ``ConfigParser`` in a script: the ``config_file``
  argument of the calling ``monai.bundle`` function.

An explicit ``--bundle_root DIR`` override always wins (it replaces the expression).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Optional

__all__ = ["bundle_root", "bundle_root_of_config"]


def bundle_root_of_config(config_file: Any) -> Optional[str]:
    """The bundle folder of a config file path (or the first of a list): the parent of ``configs/``, else its folder.

    Returns None when ``config_file`` is not a path to an existing file.
    """
    if isinstance(config_file, (list, tuple)):
        config_file = config_file[0] if config_file else None
    if not isinstance(config_file, (str, os.PathLike)):
        return None
    path = Path(config_file)
    if not path.is_file():
        return None
    folder = path.resolve().parent
    return str(folder.parent if folder.name == "configs" else folder)


def bundle_root(default: Optional[str] = None) -> str:
    """The absolute path of the bundle whose config is being parsed (see the module docstring).

    The config is found on the call stack: a ``ConfigWorkflow`` (its ``config_root_path``) or a ``monai.bundle``
    script function's ``config_file`` argument.  Without either, ``default`` is returned when given, else the
    working directory when it looks like a bundle (has ``configs/``), else a ValueError explains how to pass
    ``bundle_root`` explicitly.
    """
    from monai.bundle import ConfigWorkflow

    frame = inspect.currentframe()
    try:
        frame = frame.f_back if frame is not None else None
        while frame is not None:
            local = frame.f_locals
            owner = local.get("self")
            if isinstance(owner, ConfigWorkflow) and getattr(owner, "config_root_path", None) is not None:
                root = Path(owner.config_root_path).resolve()
                return str(root.parent if root.name == "configs" else root)
            if frame.f_globals.get("__name__", "").startswith("monai.bundle"):
                for name in ("config_file_", "config_file"):
                    found = bundle_root_of_config(local.get(name))
                    if found is not None:
                        return found
            frame = frame.f_back
    finally:
        del frame
    if default is not None:
        return str(Path(default).resolve())
    if Path("configs").is_dir():
        return str(Path.cwd())
    raise ValueError(
        "cannot tell which bundle this config belongs to (not parsed by monai.bundle / ConfigWorkflow and the "
        f"working directory {os.getcwd()!r} has no configs/ folder); pass it explicitly, e.g. --bundle_root DIR "
        "or parser['bundle_root'] = DIR."
    )
