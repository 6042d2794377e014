"""``@endpoint``: the one place where a route declares its permission and its inputs.

The decorator turns ``async def handler(call: Call) -> Response`` into a Starlette request
function that authenticates the caller, checks the permission, validates query and JSON body
with pydantic (422 per field) and passes everything in a :class:`Call`. The same declaration
feeds ``/openapi.json``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from gtvision import logs
from gtvision.web.auth import AuthError, Perm, Principal, TokenTypeError, bearer_token
from gtvision.web.problems import ApiError, nul_problem, validation_problem

if TYPE_CHECKING:
    from gtvision.web.state import AppState

M = TypeVar("M", bound=BaseModel)
RequestFn = Callable[[Request], Awaitable[Response]]
_MAX_ID = 2**63 - 1
_ACCESS = frozenset({"access"})
_STREAM = frozenset({"stream"})
_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True, slots=True)
class Spec:
    """What a route needs and accepts (also the source of its OpenAPI operation)."""

    perm: Perm | None
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    stream_token: bool = False
    responses: dict[int, str] = field(default_factory=dict)
    media_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class Call:
    """Everything a handler gets: request, caller, app state and validated inputs."""

    request: Request
    principal: Principal | None
    state: AppState
    body_model: BaseModel | None
    query_model: BaseModel | None

    @property
    def user(self) -> Principal:
        """The authenticated caller (every non-public route has one)."""
        assert self.principal is not None
        return self.principal

    @property
    def ip(self) -> str:
        """Client address for the audit log."""
        return self.request.client.host if self.request.client else ""

    def body(self, model: type[M]) -> M:
        """The validated JSON body as ``model``."""
        assert isinstance(self.body_model, model)
        return self.body_model

    def query(self, model: type[M]) -> M:
        """The validated query parameters as ``model``."""
        assert isinstance(self.query_model, model)
        return self.query_model

    def path_int(self, name: str) -> int:
        """An ``{name:int}`` path parameter."""
        value: int = self.request.path_params[name]
        if value > _MAX_ID:
            raise ApiError(404, f"{name} {value} not found")
        return value


def spec_of(fn: object) -> Spec | None:
    """The :class:`Spec` attached by ``@endpoint``, if any."""
    spec = getattr(fn, "gtv_spec", None)
    return spec if isinstance(spec, Spec) else None


def _bearer(request: Request, spec: Spec) -> tuple[str, frozenset[str]]:
    token = bearer_token(request.scope)
    if token:
        return token, _ACCESS
    if spec.stream_token and request.query_params.get("token"):
        # only stream tokens in URLs: URLs end up in access logs and browser history
        return request.query_params["token"], _STREAM
    detail = "missing bearer token (Authorization: Bearer <access token>)"
    raise ApiError(401, detail, headers=_UNAUTHORIZED)


async def authenticate(request: Request, state: AppState, spec: Spec) -> Principal:
    """The caller of ``request`` from its bearer (or stream) token; 401 otherwise.

    A token of a revoked generation (``web/revocation.py``) is refused too.
    """
    token, allowed = _bearer(request, spec)
    try:
        who = state.tokens.verify(token, allowed)
    except TokenTypeError as err:
        detail = str(err)
        if allowed is _STREAM:
            detail = "only a stream token (POST /auth/stream-token) is accepted in ?token="
        raise ApiError(401, detail, headers=_UNAUTHORIZED) from None
    except AuthError as err:
        raise ApiError(401, str(err), headers=_UNAUTHORIZED) from None
    revocation = state.revocation
    if revocation is not None:
        good = revocation.known(who.user_id, who.gen)
        if good is None:  # this process's memo is stale: one await for the lookup
            good = await revocation.valid(who.user_id, who.gen)
        if not good:
            detail = "token revoked (logout everywhere, password or role change, user disabled)"
            raise ApiError(401, detail + ": log in again", headers=_UNAUTHORIZED)
    return who


def _nul_fields(value: object, loc: tuple[str | int, ...]) -> list[tuple[str | int, ...]]:
    """Where strings of a validated input hold NUL characters (PostgreSQL cannot store them)."""
    if isinstance(value, str):
        return [loc] if "\x00" in value else []
    if isinstance(value, dict):
        return [b for k, v in value.items() for b in _nul_fields(v, (*loc, str(k)))]
    if isinstance(value, list | tuple):
        return [b for i, v in enumerate(value) for b in _nul_fields(v, (*loc, i))]
    return []


def _query_dict(request: Request) -> dict[str, Any]:
    if not request.scope.get("query_string"):
        return {}  # most GETs: no QueryParams parse
    return {k: v for k, v in request.query_params.items() if k != "token"}


def _log_context(request: Request, who: Principal | None) -> None:
    """City of the caller and camera/event ids of the path for the request's log lines.

    Set in the request's context, which the ``RequestFrame`` middleware resets at its end.
    """
    params = request.path_params
    if who is not None and who.city_id is not None:
        logs.CITY_ID.set(who.city_id)
    if isinstance(params.get("camera_id"), int):
        logs.CAMERA_ID.set(params["camera_id"])
    event = params.get("event_id")
    if event is not None:
        logs.EVENT_ID.set(str(event))


def endpoint(
    perm: Perm | None,
    summary: str,
    *,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    stream_token: bool = False,
    responses: dict[int, str] | None = None,
    media_type: str = "application/json",
) -> Callable[[Callable[[Call], Awaitable[Response]]], RequestFn]:
    """Declare a route's permission (``None`` = public), summary and input models."""
    spec = Spec(perm, summary, body, query, stream_token, responses or {}, media_type)

    def deco(handler: Callable[[Call], Awaitable[Response]]) -> RequestFn:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            state: AppState = request.app.state.gtv
            who = None
            if spec.perm is not None:
                who = await authenticate(request, state, spec)
                if not who.can(spec.perm):
                    detail = f"role {who.role.value!r} lacks permission {spec.perm.value!r}"
                    raise ApiError(403, detail)
            query_model = body_model = None
            if spec.query is not None:
                raw_query = _query_dict(request)
                try:
                    query_model = spec.query.model_validate(raw_query)
                except ValidationError as err:
                    return validation_problem(err, "query", request.url.path)
                # a NUL can only come from the query string (defaults hold none)
                if raw_query and (nul := _nul_fields(query_model.model_dump(), ("query",))):
                    return nul_problem(nul, request.url.path)
            if spec.body is not None:
                raw = await request.body()
                try:
                    body_model = spec.body.model_validate_json(raw or b"null")
                except ValidationError as err:
                    return validation_problem(err, "body", request.url.path)
                if nul := _nul_fields(body_model.model_dump(), ("body",)):
                    return nul_problem(nul, request.url.path)
            call = Call(request, who, state, body_model, query_model)
            _log_context(request, who)
            return await handler(call)

        run.gtv_spec = spec  # type: ignore[attr-defined]
        return run

    return deco
