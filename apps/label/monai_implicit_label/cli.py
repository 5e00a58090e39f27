"""Command line of the MONAI Label app: ``python apps/label/cli.py {init,start_server} ...``.

The repository's ``apps/label`` is a MONAI Label app folder: its ``main.py`` exports :class:`MonaiImplicitApp` from
this package (``monai_implicit_label``, next to ``main.py``, never installed), which uses the installed
``monai_implicit`` (editable or not).  MONAI Label writes its working folders (``bin/ lib/ logs/ model/``) and logs
into the ``--app`` folder: ``apps/label`` itself (the default; the folders are git-ignored), or a folder of your own
whose ``main.py`` loads the app from ``apps/label`` (written by ``init``)::

    python apps/label/cli.py start_server --studies /data/ct --conf models hyperunet_lits
    python apps/label/cli.py init ~/monai_implicit_app          # writes ~/monai_implicit_app/main.py
    python apps/label/cli.py start_server --app ~/monai_implicit_app --studies /data/ct \
        --conf bundles_dir ~/monai_implicit/bundles

``start_server`` writes the app folder when needed and runs ``monailabel start_server`` with safer defaults:
``--host 127.0.0.1`` unless given, and ``--uvicorn_app monai_implicit_label.server:app``: MONAI Label's
application behind a guard that refuses requests from other web origins and, on loopback, other Host names (see
:mod:`monai_implicit_label.server`).  Every other option goes to MONAI Label unchanged.  Nothing here imports
MONAI Label before the server starts (it reads its settings from the environment at import).
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from monai.config import PathLike

from monai_implicit_label.bundles import APP_DIR

__all__ = ["APP_MAIN", "check_app_folder", "init_app_dir", "main", "server_arguments"]

#: how the command line is started (in messages)
_CLI = f"python {APP_DIR / 'cli.py'}"

#: the ``main.py`` of an app folder of your own: MONAI Label serves the MONAILabelApp subclass it finds in this file
APP_MAIN = f'''"""MONAI Label app folder of monai_implicit (written by `{_CLI} init`).

MONAI Label serves the MONAILabelApp subclass imported here from the app folder below, and keeps its working
folders (bin/ lib/ logs/ model/) next to this file.
"""

import sys

APP_SOURCE = {str(APP_DIR)!r}
if APP_SOURCE not in sys.path:
    sys.path.insert(0, APP_SOURCE)

from monai_implicit_label.main import MonaiImplicitApp  # noqa: E402,F401
'''

_LOOPBACK_NAMES = ("localhost",)


def _package_dirs() -> dict[str, Path]:
    """The packages MONAI Label must not write into: ``monai_implicit`` (where it is installed) and this one."""
    spec = importlib.util.find_spec("monai_implicit")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    found = {"monai_implicit": Path(locations[0]).resolve()} if locations else {}
    return {**found, "monai_implicit_label": Path(__file__).resolve().parent}


def check_app_folder(folder: PathLike) -> Path:
    """``folder`` resolved, after checking that it is outside the ``monai_implicit`` and ``monai_implicit_label``
    packages (MONAI Label writes ``bin/ lib/ logs/ model/`` into its app folder).

    Raises:
        ValueError: ``folder`` is inside one of the packages (the message says how to make an app folder).
    """
    target = Path(folder).expanduser().resolve()
    for name, package in _package_dirs().items():
        if target == package or package in target.parents:
            raise ValueError(
                f"app folder {str(target)!r} is inside the {name} package {str(package)!r}: MONAI Label writes "
                f"bin/ lib/ logs/ model/ into it. Serve the app folder {str(APP_DIR)!r}, or create one outside the "
                f"packages with `{_CLI} init DIR`, e.g. ~/monai_implicit_app."
            )
    return target


def init_app_dir(folder: PathLike, force: bool = False) -> Path:
    """Create (or check) a MONAI Label app folder that serves this app; return its ``main.py``.

    The app's own folder (``apps/label``) is served as it is: nothing is written there.

    Args:
        folder: the app folder (created when missing); it must be outside the packages.
        force: replace a ``main.py`` with other content.

    Raises:
        ValueError: ``folder`` is inside a package (see :func:`check_app_folder`), is a file, or holds a different
            ``main.py`` and not ``force``.
    """
    target = check_app_folder(folder)
    if target == APP_DIR:
        return APP_DIR / "main.py"
    if target.exists() and not target.is_dir():
        raise ValueError(f"app folder {str(target)!r} exists and is not a folder.")
    main_py = target / "main.py"
    if main_py.is_file() and main_py.read_text() != APP_MAIN and not force:
        raise ValueError(f"{str(main_py)!r} exists with other content; pass --force to replace it.")
    target.mkdir(parents=True, exist_ok=True)
    if not main_py.is_file() or main_py.read_text() != APP_MAIN:
        main_py.write_text(APP_MAIN)
    return main_py


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_arguments(argv: Sequence[str], environ: Optional[dict[str, str]] = None) -> tuple[list[str], dict[str, str]]:
    """The ``monailabel`` arguments and the environment defaults for ``start_server argv``.

    Args:
        argv: the ``start_server`` options (``--app DIR``, default the app folder ``apps/label``; everything MONAI
            Label accepts).
        environ: the environment to complete (default ``os.environ``); it is not modified.

    Returns:
        ``(["start_server", "--app", DIR, "--host", HOST, "--port", PORT, "--uvicorn_app", APP, ...], {VAR: value})``:
        the host defaults to 127.0.0.1 and the served application to :mod:`monai_implicit_label.server` (the
        origin and Host guard); when serving on loopback, ``MONAI_IMPLICIT_LABEL_HOSTS`` defaults to the loopback
        names.

    Raises:
        ValueError: ``MONAI_LABEL_CORS_ORIGINS`` is set (MONAI Label 0.8.5 cannot start with it).
    """
    environ = os.environ if environ is None else environ
    if environ.get("MONAI_LABEL_CORS_ORIGINS"):
        raise ValueError(
            "MONAI_LABEL_CORS_ORIGINS is set: MONAI Label 0.8.5 fails at start with it (and stores origins with a "
            "trailing '/' that no browser sends). Unset it; list other allowed web origins in "
            "MONAI_IMPLICIT_LABEL_ORIGINS instead (comma-separated, e.g. http://localhost:3000)."
        )
    parser = argparse.ArgumentParser(prog="python apps/label/cli.py start_server", add_help=False)
    parser.add_argument("-a", "--app", default=str(APP_DIR))
    parser.add_argument("-i", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=8000)
    parser.add_argument("--uvicorn_app", default="monai_implicit_label.server:app")
    known, rest = parser.parse_known_args(list(argv))
    app = str(Path(known.app).expanduser().resolve())
    env: dict[str, str] = {}
    if _is_loopback(known.host) and not environ.get("MONAI_IMPLICIT_LABEL_HOSTS"):
        env["MONAI_IMPLICIT_LABEL_HOSTS"] = ",".join(dict.fromkeys(["127.0.0.1", "localhost", "::1", known.host]))
    args = ["start_server", "--app", app, "--host", known.host, "--port", str(known.port),
            "--uvicorn_app", known.uvicorn_app, *rest]
    return args, env


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python apps/label/cli.py``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python apps/label/cli.py",
        description="MONAI Label app of monai_implicit: create an app folder, or start the server on one.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init", help="write DIR/main.py, an app folder for `monailabel start_server --app DIR`")
    init.add_argument("folder", help="the app folder (outside the packages; created when missing)")
    init.add_argument("--force", action="store_true", help="replace a main.py with other content")
    commands.add_parser(
        "start_server",
        add_help=False,
        help="monailabel start_server [--app DIR] ... (default: this app folder; writes DIR/main.py; 127.0.0.1 and the "
        "origin guard by default)",
    )
    args, rest = parser.parse_known_args(argv)
    try:
        if args.command == "init":
            if rest:
                parser.error(f"unrecognized arguments: {' '.join(rest)}")
            print(f"app folder: {init_app_dir(args.folder, args.force).parent}")
            return 0
        monailabel_args, env = server_arguments(rest)
        init_app_dir(monailabel_args[2])
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    os.environ.update(env)
    if str(APP_DIR) not in sys.path:  # uvicorn imports the guarded application by its module name
        sys.path.insert(0, str(APP_DIR))
    host = monailabel_args[monailabel_args.index("--host") + 1]
    if not _is_loopback(host) and os.environ.get("MONAI_LABEL_AUTH_ENABLE", "").lower() not in ("1", "true", "yes"):
        print(
            f"warning: serving on {host} without authentication: anyone who can reach the port can read the datastore "
            "and start training. Set MONAI_LABEL_AUTH_ENABLE=true (with a Keycloak realm) or use --host 127.0.0.1.",
            file=sys.stderr,
        )
    from monailabel.main import Main  # after the environment is final: MONAI Label reads its settings at import

    sys.argv = ["monailabel", *monailabel_args]
    Main().run()
    return 0
