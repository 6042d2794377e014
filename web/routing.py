"""A Starlette ``Router`` that finds routes of fixed paths by a dictionary lookup.

Starlette's router tries every route's regular expression in order; ``GET /cameras`` is the
21st route of the API and its scan was the largest single cost of a cached request (about 15 %
of the server's CPU under ``bench/api.py``). :class:`IndexedRouter` keeps, for each fixed path
(no ``{parameters}``), the routes of that path -- but only when no earlier route can match the
path at all, so the first full match is the one Starlette would pick. Anything else (a path
with parameters, a method that no route of the path allows, a mount, a redirect of a trailing
slash, lifespan) goes through Starlette's own scan unchanged.
"""

from __future__ import annotations

from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, Mount, Route, Router
from starlette.types import Receive, Scope, Send


def fixed_path_index(routes: list[BaseRoute]) -> dict[str, list[Route]]:
    """Fixed path -> its routes in order, for paths no earlier route can match."""
    index: dict[str, list[Route]] = {}
    unsafe: set[str] = set()
    for i, route in enumerate(routes):
        if not isinstance(route, Route) or route.param_convertors:
            continue
        path = route.path
        earlier = routes[:i]
        for other in earlier:
            if isinstance(other, Route | Mount):
                shadow = other.path_regex.match(path) is not None and other.path != path
            else:  # a Host or custom route: cannot tell, leave the path to Starlette
                shadow = True
            if shadow:
                unsafe.add(path)
                break
        index.setdefault(path, []).append(route)
    for path in unsafe:
        index.pop(path, None)
    return index


class IndexedRouter(Router):
    """``Router`` with a dictionary of fixed paths in front of its scan (module docstring)."""

    _indexed: tuple[int, dict[str, list[Route]]] | None = None

    def _index(self) -> dict[str, list[Route]]:
        if self._indexed is None or self._indexed[0] != len(self.routes):
            self._indexed = (len(self.routes), fixed_path_index(self.routes))
        return self._indexed[1]

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch ``scope``: a fixed path's own routes first, else Starlette's scan."""
        if scope["type"] == "http":
            routes = self._index().get(get_route_path(scope))
            if routes:
                for route in routes:
                    match, child_scope = route.matches(scope)
                    if match is Match.FULL:
                        if "router" not in scope:
                            scope["router"] = self
                        scope["route"] = route
                        scope.update(child_scope)
                        await route.handle(scope, receive, send)
                        return
        await super().app(scope, receive, send)
