"""The operator console: ``/`` and ``/docs`` (HTML), ``/static/console/*`` (built assets).

The console is built from ``web/console`` (TypeScript, Vite; ``docs/console.md``) into
``web/static/console``, which ships in the package. Its strict Content Security Policy is the
pages' policy of ``web.middleware.RequestFrame`` (no inline script or style is needed).
Hashed assets are cached for a year; the pages are revalidated on every load. A checkout whose
console was never built answers 503 saying how to build it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from importlib.resources.abc import Traversable

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

BUILD_HINT = (
    "the operator console is not built: run `bash .ci/build-console` (Node 20 and npm) in the "
    "source tree, or install a gtvision wheel, which carries it"
)
_IMMUTABLE = "public, max-age=31536000, immutable"


def _built(name: str) -> Traversable:
    return resources.files("gtvision.web.static").joinpath("console").joinpath(name)


def _page(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def page(request: Request) -> Response:
        built = _built(name)
        if not built.is_file():
            return HTMLResponse(f"<!doctype html><title>gtvision</title><p>{BUILD_HINT}</p>", 503)
        # the CSP and the other security headers come from web.middleware.RequestFrame
        return HTMLResponse(built.read_text("utf-8"), headers={"Cache-Control": "no-cache"})

    page.__name__ = name.replace(".", "_")
    return page


class Assets(StaticFiles):
    """Static files; the console's content-hashed assets are cached for good."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The file, with a long cache lifetime when its name carries its hash."""
        response = await super().get_response(path, scope)
        if response.status_code == 200 and path.startswith("console/assets/"):
            response.headers["Cache-Control"] = _IMMUTABLE
        return response


ROUTES: list[BaseRoute] = [
    Route("/", _page("index.html"), methods=["GET"], include_in_schema=False),
    Route("/docs", _page("docs.html"), methods=["GET"], include_in_schema=False),
    Mount("/static", Assets(packages=[("gtvision.web", "static")]), name="static"),
]
