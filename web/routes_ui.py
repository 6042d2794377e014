"""The operator console: ``/`` and ``/docs`` (HTML), ``/static/console/*`` (built assets).

The console is built from ``web/console`` (TypeScript, Vite; ``docs/console.md``) into
``web/static/console``, which ships in the package. The HTML pages get a strict Content Security
Policy: scripts, styles and connections from this origin only; images and video also from the
object store's origin, where crops, clips and recordings are presigned. Hashed assets are cached
for a year; the pages are revalidated on every load. A checkout whose console was never built
answers 503 saying how to build it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from importlib.resources.abc import Traversable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from gtvision.web.state import AppState

BUILD_HINT = (
    "the operator console is not built: run `bash .ci/build-console` (Node 20 and npm) in the "
    "source tree, or install a gtvision wheel, which carries it"
)
_IMMUTABLE = "public, max-age=31536000, immutable"


def _built(name: str) -> Traversable:
    return resources.files("gtvision.web.static").joinpath("console").joinpath(name)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def console_csp(state: AppState) -> str:
    """The pages' policy: this origin only, plus two exceptions.

    Images and video may also come from the object store (presigned crops, clips,
    recordings); connections may also go to MediaMTX (WHEP) when it is configured.
    """
    media = ["'self'"]
    if state.store is not None:
        origin = _origin(state.store.presigned_get("csp-probe", 60))
        if origin:
            media.append(origin)
    sources = " ".join(media)
    settings = state.settings
    # MediaMTX (WHEP POSTs) when the server hands out its URLs (GET /cameras/{id}/live)
    mediamtx = (_origin(settings.mediamtx_public_url), _origin(settings.mediamtx_hls_url))
    connect = ["'self'", *sorted({o for o in mediamtx if o})]
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {sources}",
            f"media-src {sources}",
            f"connect-src {' '.join(connect)}",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ]
    )


def _page(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def page(request: Request) -> Response:
        built = _built(name)
        if not built.is_file():
            return HTMLResponse(f"<!doctype html><title>gtvision</title><p>{BUILD_HINT}</p>", 503)
        app_state = request.app.state
        csp = getattr(app_state, "console_csp", None)
        if csp is None:
            csp = app_state.console_csp = console_csp(app_state.gtv)
        headers = {
            "Cache-Control": "no-cache",
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        }
        return HTMLResponse(built.read_text("utf-8"), headers=headers)

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
