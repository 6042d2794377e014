"""``IndexedRouter`` answers every request exactly as Starlette's ``Router`` does.

Both routers get the API's own route table (paths, methods, order) with endpoints that name the
route that answered; requests cover every route's path (parameters filled in), every method,
trailing slashes, near misses and generated hostile paths. Status, body and redirect target
must be identical.
"""

from __future__ import annotations

import random
import re
import string

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Mount, Route, Router

from gtvision.web.app import ROUTES
from gtvision.web.routing import IndexedRouter, fixed_path_index

METHODS = ("GET", "HEAD", "POST", "PATCH", "DELETE", "PUT", "OPTIONS")
_PARAM = re.compile(r"\{([a-z_]+)(?::([a-z]+))?\}")
_SAMPLE = {"int": "42", "uuid": "0b9d7c1e-8f1a-4c9e-9d5b-2f1e0c3a4b5d", "path": "a/b.jpg"}


def _named(route: Route, i: int) -> Route:
    async def answer(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{i} {route.path} {request.path_params}")

    return Route(route.path, answer, methods=sorted(route.methods or ()), name=f"r{i}")


def _table(routes: list[BaseRoute]) -> list[BaseRoute]:
    out: list[BaseRoute] = []
    for i, route in enumerate(routes):
        if isinstance(route, Route):
            out.append(_named(route, i))
        elif isinstance(route, Mount):
            out.append(Mount(route.path, app=PlainTextResponse(f"mount {route.path}")))
    return out


def _paths(routes: list[BaseRoute]) -> list[str]:
    concrete = [
        _PARAM.sub(lambda m: _SAMPLE.get(m.group(2) or "", "x"), r.path)
        for r in routes
        if isinstance(r, Route | Mount)
    ]
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "/._-%~{}:"
    hostile = [  # no leading "//": a client would send that as a host name
        "/" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))).lstrip("/")
        for _ in range(200)
    ]
    near = [p + "/" for p in concrete] + [p.upper() for p in concrete] + [p + "x" for p in concrete]
    return [*concrete, *near, *hostile, "/", "/static", "/static/x.js", "/cameras/status/"]


async def _answer(app: Router, method: str, path: str) -> tuple[int, str, str | None]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        resp = await client.request(method, path)
    return resp.status_code, resp.text, resp.headers.get("location")


async def test_the_indexed_router_answers_like_starlettes() -> None:
    table = _table(list(ROUTES))
    plain, indexed = Router(table), IndexedRouter(table)
    checked = 0
    for path in _paths(table):
        for method in METHODS:
            want = await _answer(plain, method, path)
            assert await _answer(indexed, method, path) == want, (method, path)
            checked += 1
    assert checked > 2000


def test_a_fixed_path_shadowed_by_an_earlier_route_is_left_to_the_scan() -> None:
    async def x(request: Request) -> PlainTextResponse:
        return PlainTextResponse("x")

    routes: list[BaseRoute] = [
        Route("/events/{name}", x),
        Route("/events/export", x),
        Route("/cameras", x),
        Route("/cameras", x, methods=["POST"]),
        Mount("/static", app=PlainTextResponse("s")),
        Route("/static/app.js", x),
    ]
    index = fixed_path_index(routes)
    assert sorted(index) == ["/cameras"]
    assert len(index["/cameras"]) == 2


@pytest.mark.parametrize("path", ["/cameras", "/events/export"])
async def test_the_earlier_route_wins_as_in_starlette(path: str) -> None:
    async def first(request: Request) -> PlainTextResponse:
        return PlainTextResponse("first")

    async def second(request: Request) -> PlainTextResponse:
        return PlainTextResponse("second")

    routes: list[BaseRoute] = [Route("/{name}", first), Route(path, second)]
    assert await _answer(IndexedRouter(routes), "GET", path) == await _answer(
        Router(routes), "GET", path
    )
