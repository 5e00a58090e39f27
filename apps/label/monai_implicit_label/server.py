"""The ASGI application the app's ``start_server`` serves: MONAI Label's, behind a browser-origin and Host guard.

``python apps/label/cli.py start_server`` passes ``--uvicorn_app monai_implicit_label.server:app``
to MONAI Label, which serves this module's ``app``: MONAI Label's own FastAPI application wrapped in

* :class:`OriginGuard`: a request that a browser marks with an ``Origin`` other than the server's own address (the
  page it came from) or one of ``MONAI_IMPLICIT_LABEL_ORIGINS`` is refused with 403 before MONAI Label sees it.
  MONAI Label 0.8.5 answers every origin with CORS ``*`` and credentials, and CORS never stops "simple" requests
  (a form POST starts training, uploads to the datastore) from running; a web page open in the annotator's
  browser could otherwise drive a server on 127.0.0.1.  Clients that are not browsers (3D Slicer, scripts) send no
  ``Origin`` and are not affected; the OHIF viewer served by MONAI Label itself is the server's own origin.
* Starlette's ``TrustedHostMiddleware`` with ``MONAI_IMPLICIT_LABEL_HOSTS`` (``start_server`` sets the loopback
  names when it binds to loopback): a web page reaching the server through DNS rebinding sends its own host name
  and is refused with 400.

Settings (environment, comma-separated; ``start_server`` fills the defaults):
    ``MONAI_IMPLICIT_LABEL_ORIGINS``: other web origins allowed to call the server, e.g. ``http://localhost:3000``
    for an OHIF viewer served elsewhere (default: none);
    ``MONAI_IMPLICIT_LABEL_HOSTS``: the Host names the server answers to (default ``*``: any).

MONAI Label's own ``MONAI_LABEL_CORS_ORIGINS`` cannot be used with MONAI Label 0.8.5: ``monailabel start_server``
fails at start when it is set (its settings log cannot serialise the URL type), and the origins it stores end with a
``/`` that no browser ``Origin`` has.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ORIGINS_ENV", "HOSTS_ENV", "OriginGuard", "guarded_app"]  # and ``app``, built on first access

ORIGINS_ENV = "MONAI_IMPLICIT_LABEL_ORIGINS"
HOSTS_ENV = "MONAI_IMPLICIT_LABEL_HOSTS"


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class OriginGuard:
    """ASGI middleware refusing (403) HTTP and WebSocket requests whose ``Origin`` is neither the server's own
    address (``scheme://Host``) nor in ``allowed_origins``.  Requests without ``Origin`` pass.

    Args:
        app: the ASGI application to protect.
        allowed_origins: further origins, e.g. ``["http://localhost:3000"]`` (a trailing ``/`` is ignored).
    """

    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed_origins = frozenset(o.rstrip("/").lower() for o in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None:
                scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
                own = f"{scheme}://{headers.get('host', '')}".lower()
                if origin.rstrip("/").lower() not in self.allowed_origins | {own}:
                    detail = (
                        f"requests from the web origin {origin!r} are not accepted (allowed: this server's own "
                        f"address{', ' + ', '.join(sorted(self.allowed_origins)) if self.allowed_origins else ''}; "
                        f"set {ORIGINS_ENV} to allow more)."
                    )
                    await JSONResponse({"detail": detail}, status_code=403)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def guarded_app(inner: ASGIApp, origins: Iterable[str] = (), hosts: Iterable[str] = ("*",)) -> ASGIApp:
    """``inner`` behind :class:`OriginGuard` (``origins``) and ``TrustedHostMiddleware`` (``hosts``)."""
    return TrustedHostMiddleware(OriginGuard(inner, origins), allowed_hosts=list(hosts) or ["*"])


def __getattr__(name: str) -> ASGIApp:
    # ``app`` is built when uvicorn asks for it, so importing this module (e.g. for OriginGuard) does not import
    # MONAI Label's application, which reads its settings and prints them at import
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from monailabel.app import app as monailabel_app

    hosts = _split(os.environ.get(HOSTS_ENV, "")) or ["*"]
    built = guarded_app(monailabel_app, _split(os.environ.get(ORIGINS_ENV, "")), hosts)
    globals()["app"] = built
    return built
