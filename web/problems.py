"""RFC 9457 problem details: the one error shape of the API.

Handlers raise :class:`ApiError`; request validation failures become 422 problems listing each
field; unexpected exceptions become a 500 problem without internals.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_json
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class ApiError(Exception):
    """An error answered as a problem document with ``status`` and ``detail``."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}


def not_found(ident: object, *, kind: str) -> ApiError:
    """404 for a resource that does not exist *or belongs to another city*."""
    return ApiError(404, f"{kind} {ident} not found")


def problem(
    status: int,
    detail: str,
    *,
    instance: str = "",
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """Build an ``application/problem+json`` response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra or {})
    return Response(to_json(body), status_code=status, headers=headers, media_type=PROBLEM_TYPE)


def error_context(e: Any) -> dict[str, str | int | float]:
    """The JSON-safe part of a pydantic error's ``ctx`` (limits, expected values, pattern).

    Clients word the error in their own language from ``type`` and these values (the
    console's pt-BR messages); a custom validator's exception object is left out.
    """
    ctx = e.get("ctx") or {}
    return {k: v for k, v in ctx.items() if isinstance(v, str | int | float)}


def validation_problem(err: ValidationError, where: str, instance: str = "") -> Response:
    """422 listing every invalid field as ``{"loc", "msg", "type", "ctx"}``."""
    errors = [
        {
            "loc": [where, *[str(p) for p in e["loc"]]],
            "msg": e["msg"],
            "type": e["type"],
            "ctx": error_context(e),
        }
        for e in err.errors(include_url=False, include_input=False)
    ]
    first = errors[0] if errors else {"loc": [where], "msg": "invalid"}
    detail = f"invalid {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return problem(422, detail, instance=instance, extra={"errors": errors})


def nul_problem(locs: list[tuple[str | int, ...]], instance: str = "") -> Response:
    """422 for text fields holding NUL characters, one error per field."""
    msg = "must not contain NUL characters (\\u0000)"
    errors = [{"loc": [str(p) for p in loc], "msg": msg, "type": "string_nul"} for loc in locs]
    detail = f"invalid {'.'.join(errors[0]['loc'])}: {msg}"
    return problem(422, detail, instance=instance, extra={"errors": errors})


async def api_error_handler(request: Request, exc: Exception) -> Response:
    """Exception handler for :class:`ApiError`."""
    assert isinstance(exc, ApiError)
    return problem(
        exc.status, exc.detail, instance=request.url.path, headers=exc.headers, extra=exc.extra
    )


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own HTTP errors (404 unknown route, 405) as problems."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers) if exc.headers else None
    return problem(exc.status_code, str(exc.detail), instance=request.url.path, headers=headers)


async def data_error_handler(request: Request, exc: Exception) -> Response:
    """PostgreSQL refused a value the models let through (out of range, bad encoding): 422.

    The answer names the column or constraint in the API's words, never psycopg's message.
    """
    diag = getattr(exc, "diag", None)
    where = getattr(diag, "column_name", None) or getattr(diag, "constraint_name", None)
    what = f" for {where}" if where else ""
    detail = f"a value{what} cannot be stored (too large, out of range or not valid text)"
    return problem(422, detail, instance=request.url.path)


_INTEGRITY = {
    "23505": (409, "conflicts with an existing record"),
    "23503": (422, "refers to a record that does not exist (or is still referred to)"),
    "23502": (422, "is missing a required value"),
    "23514": (422, "breaks the rule"),
    "23P01": (409, "overlaps an existing record"),
}


async def integrity_error_handler(request: Request, exc: Exception) -> Response:
    """A constraint the route did not expect fired: 409/422 naming it, without psycopg's text."""
    code = getattr(exc, "sqlstate", None) or ""
    status, what = _INTEGRITY.get(code, (409, "breaks a database rule"))
    diag = getattr(exc, "diag", None)
    name = getattr(diag, "constraint_name", None) or getattr(diag, "column_name", None) or ""
    table = getattr(diag, "table_name", None)
    subject = f"the {table} record" if table else "the record"
    detail = f"{subject} {what}{f' {name}' if name else ''}"
    log.info("%s %s refused by the database: sqlstate %s %s", request.method,
             request.url.path, code, name)  # fmt: skip
    return problem(status, detail, instance=request.url.path)


async def server_error_handler(request: Request, exc: Exception) -> Response:
    """Anything unexpected: log it, answer a 500 problem without internals."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal error; see the server log", instance=request.url.path)
