"""The operator page: ``/`` serves ``static/operator.html``, ``/static/*`` its script and style.

Plain files, no build step, no authentication needed to fetch them: the page logs in through
``/auth/login`` and reads the live feed from ``/stream/events`` with a stream token.
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

_PAGE = "operator.html"


async def operator_page(request: Request) -> Response:
    """The operator page (HTML)."""
    html = resources.files("gtvision.web.static").joinpath(_PAGE).read_text("utf-8")
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


ROUTES: list[BaseRoute] = [
    Route("/", operator_page, methods=["GET"], include_in_schema=False),
    Mount("/static", StaticFiles(packages=[("gtvision.web", "static")]), name="static"),
]
