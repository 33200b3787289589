"""The web dashboard: static HTML, CSS and JavaScript that the manager serves itself.

An operator who can reach the manager's API can open its dashboard, with nothing more to
deploy, build or keep in step: the pages are package data, read by the browser as they
are, and they learn everything from the same ``/v1`` endpoints any client uses. Every
URL in them is relative, so the dashboard works unchanged behind a proxy that serves the
manager under a path prefix (docs/dashboard.md).
"""

from __future__ import annotations

import importlib.resources
import os
from typing import TYPE_CHECKING, Final

from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import NotModifiedResponse, StaticFiles

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import Scope

__all__ = ["routes"]

#: The media types of the assets, fixed here rather than guessed from the host's
#: ``mimetypes`` tables: a browser refuses an ES module served as ``text/plain``, which
#: some systems' tables say for ``.js``.
MEDIA_TYPES: Final = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}

#: The page runs only its own files and talks only to its own origin, so an injected
#: script or a foreign frame has nowhere to come from.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

#: Assets have no content hash in their names (there is no build step), so a browser
#: revalidates them on every load; an unchanged file costs a 304.
_COMMON_HEADERS: Final = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class _Assets(StaticFiles):
    """Starlette's static files with fixed media types and the dashboard's headers."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        suffix = os.path.splitext(os.fspath(full_path))[1].lower()
        response = FileResponse(
            full_path,
            status_code=status_code,
            stat_result=stat_result,
            media_type=MEDIA_TYPES.get(suffix),
            headers=_COMMON_HEADERS,
        )
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            return NotModifiedResponse(response.headers)
        return response


def routes() -> list[BaseRoute]:
    """``GET /`` (the page) and ``/static/...`` (its assets), for the manager's app."""
    page = importlib.resources.files(__name__).joinpath("index.html").read_bytes()
    headers = {**_COMMON_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY}

    async def index(_: Request) -> Response:
        return Response(page, media_type=MEDIA_TYPES[".html"], headers=headers)

    return [
        Route("/", index, methods=["GET"], name="dashboard"),
        Mount("/static", app=_Assets(packages=[(__name__, "static")]), name="dashboard-static"),
    ]
