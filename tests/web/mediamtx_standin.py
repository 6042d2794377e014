"""A MediaMTX stand-in for tests: its control API checked against MediaMTX's published spec.

MediaMTX cannot run here. This HTTP server plays the parts gtvision uses and is strict where
MediaMTX is:

* **Control API** (``/v3/...``): every request must be an operation of
  ``tests/web/mediamtx/openapi.yaml`` (MediaMTX's own ``api/openapi.yaml``, copied with its MIT
  licence, source commit in ``tests/web/mediamtx/README.md``): path and method exist, path and
  query parameters have the declared types, the JSON body validates against the declared schema
  **with unknown fields refused** (MediaMTX decodes its configuration with
  ``internal/conf/jsonwrapper``, which rejects unknown fields). Answers are validated against
  the spec's response schemas too. Anything off is recorded in :attr:`violations` (a test
  asserts it stays empty) and answered 400. Path configurations live in :attr:`paths`.
* **JWT auth** as MediaMTX's ``internal/auth/manager.go`` with ``authMethod: jwt``: the token
  comes from ``Authorization: Bearer``; the JWKS is fetched over HTTP from :attr:`jwks_url`
  (then kept, like MediaMTX, until ``/v3/auth/jwks/refresh``); ``iss``/``aud`` are checked; the
  ``mediamtx_permissions`` claim must grant the action (``api`` for the control API; ``read``
  on the path, exact or ``~regex``, for players).
* **Players**: ``POST /<path>/whep`` and ``GET /<path>/index.m3u8`` only check that
  authentication (201/200 with a placeholder body, 401 otherwise): no media is served.

:meth:`stop` / :meth:`start` make an outage (connection refused) on the same port.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
import yaml
from openapi_schema_validator import OAS30Validator

SPEC_FILE = Path(__file__).with_name("mediamtx") / "openapi.yaml"
ISSUER, AUDIENCE, CLAIM = "gtvision", "mediamtx", "mediamtx_permissions"


def _strict(node: Any) -> Any:
    """A copy of a schema tree where every object with properties refuses unknown ones."""
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


class Spec:
    """MediaMTX's OpenAPI document: operation lookup and schema validation."""

    def __init__(self, path: Path = SPEC_FILE) -> None:
        self.doc = yaml.safe_load(path.read_text())
        self._strict_components = _strict(copy.deepcopy(self.doc["components"]))
        self._ops: list[tuple[re.Pattern[str], str, dict[str, Any]]] = []
        for template, item in self.doc["paths"].items():
            pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            for method, op in item.items():
                self._ops.append((re.compile(f"^{pattern}$"), method.upper(), op))

    def operation(self, method: str, path: str) -> tuple[dict[str, Any], dict[str, str]] | None:
        """The operation serving ``method path`` and its path parameters."""
        for pattern, m, op in self._ops:
            found = pattern.match(path)
            if found and m == method:
                return op, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    def errors(self, schema: dict[str, Any], value: Any, *, strict: bool) -> list[str]:
        """Validation errors of ``value`` against ``schema`` (``$ref``s into the components)."""
        components = self._strict_components if strict else self.doc["components"]
        root = {"components": components, "allOf": [_strict(schema) if strict else schema]}
        validator = OAS30Validator(root)
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(value)
        ]

    def check_request(
        self, op: dict[str, Any], params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> list[str]:
        """Problems of a request to ``op`` (empty when it follows the spec)."""
        problems: list[str] = []
        declared = {p["name"]: p for p in op.get("parameters", [])}
        for name in query:
            if declared.get(name, {}).get("in") != "query":
                problems.append(f"query parameter {name!r} is not in the spec")
        for name, p in declared.items():
            where = params if p["in"] == "path" else {k: v[0] for k, v in query.items()}
            if name not in where:
                if p.get("required"):
                    problems.append(f"missing {p['in']} parameter {name!r}")
                continue
            value: Any = where[name]
            if p["schema"].get("type") == "integer":
                try:
                    value = int(value)
                except ValueError:
                    problems.append(f"{p['in']} parameter {name!r}={value!r} is not an integer")
                    continue
            problems += self.errors(p["schema"], value, strict=True)
        content = op.get("requestBody", {}).get("content", {})
        if content:
            if body is None:
                problems.append("the operation needs a JSON body")
            else:
                schema = content["application/json"]["schema"]
                problems += [f"body {e}" for e in self.errors(schema, body, strict=True)]
        elif body is not None:
            problems.append("the operation takes no body")
        return problems

    def check_response(self, op: dict[str, Any], status: int, body: Any) -> list[str]:
        """Problems of the stand-in's own answer (keeps it honest)."""
        declared = op.get("responses", {}).get(str(status))
        if declared is None:
            return [f"status {status} is not declared for {op['operationId']}"]
        schema = declared.get("content", {}).get("application/json", {}).get("schema")
        return self.errors(schema, body, strict=False) if schema else []


def matches(perms: list[dict[str, Any]], action: str, path: str) -> bool:
    """MediaMTX's ``matchesPermission``."""
    for perm in perms:
        if perm.get("action") != action:
            continue
        if action not in ("publish", "read", "playback"):
            return True
        want = perm.get("path") or ""
        if want == "" or want == path:
            return True
        if want.startswith("~") and re.search(want[1:], path):
            return True
    return False


class MediaMtxStandIn:
    """The stand-in server (see the module docstring)."""

    def __init__(self, port: int, jwks_url: str = "") -> None:
        self.port = port
        self.jwks_url = jwks_url
        self.spec = Spec()
        self.paths: dict[str, dict[str, Any]] = {}
        self.online: dict[str, str] = {}  # runtime: path name -> onlineTime (its source delivers)
        self.violations: list[str] = []
        self.calls: list[tuple[str, str]] = []  # (method, path) of authorised control calls
        self.refused: list[str] = []  # why requests were refused (401)
        self._jwks: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """Base URL (control API and players share it here)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (again) on :attr:`port`."""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.handle(self)

            do_POST = do_PATCH = do_DELETE = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop listening: clients get connection refused (a MediaMTX outage)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ---- authentication, as MediaMTX's JWT method ------------------------------------------
    def refresh_jwks(self) -> None:
        """Forget the JWKS: the next check fetches it again."""
        self._jwks = None

    def authenticate(self, token: str, action: str, path: str = "") -> str | None:
        """``None`` when ``token`` grants ``action`` on ``path``, else why not."""
        if not token:
            return "JWT not provided"
        if self._jwks is None:
            try:
                with urllib.request.urlopen(self.jwks_url, timeout=5) as r:
                    self._jwks = json.loads(r.read())
            except (OSError, ValueError) as err:
                return f"JWKS unavailable: {type(err).__name__}: {err}"
        try:
            keys = jwt.PyJWKSet.from_dict(self._jwks)
            kid = jwt.get_unverified_header(token).get("kid")
            key = next(k for k in keys.keys if k.key_id == kid)
            claims = jwt.decode(
                token, key.key, algorithms=["ES256", "RS256"], issuer=ISSUER, audience=AUDIENCE
            )
        except (jwt.PyJWTError, StopIteration) as err:
            return f"invalid JWT: {type(err).__name__}: {err}"
        if CLAIM not in claims:
            return f"claim {CLAIM!r} not found inside JWT"
        if not matches(claims[CLAIM], action, path):
            return "user doesn't have permission to perform action"
        return None

    # ---- requests -----------------------------------------------------------------------------
    def handle(self, req: BaseHTTPRequestHandler) -> None:
        url = urlsplit(req.path)
        header = req.headers.get("Authorization", "")
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        if not url.path.startswith("/v3/"):
            self._player(req, url.path, token)
            return
        found = self.spec.operation(req.command, url.path)
        if found is None:
            self._violation(req, f"{req.command} {url.path} is not an operation of the spec")
            return
        op, params = found
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._violation(req, f"{req.command} {url.path}: body is not JSON")
            return
        problems = self.spec.check_request(op, params, parse_qs(url.query), body)
        if problems:
            self._violation(req, f"{op['operationId']}: {'; '.join(problems)}")
            return
        why = self.authenticate(token, "api")
        if why is not None:
            self.refused.append(why)
            self._send(req, 401, {"status": "error", "error": "authentication error"})
            return
        with self._lock:
            self.calls.append((req.command, url.path))
            status, answer = self._apply(op["operationId"], params, parse_qs(url.query), body)
        problems = self.spec.check_response(op, status, answer)
        if problems:
            self.violations.append(f"stand-in answer to {op['operationId']}: {problems}")
        self._send(req, status, answer)

    def _apply(
        self, op_id: str, params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        name = params.get("name", "")
        ok: dict[str, Any] = {"status": "ok"}
        if op_id == "configPathsList":
            page = int(query.get("page", ["0"])[0])
            per = int(query.get("itemsPerPage", ["100"])[0])
            items = [self.paths[k] for k in sorted(self.paths)]
            count = max(1, -(-len(items) // per)) if items else 0
            chunk = items[page * per : (page + 1) * per]
            return 200, {"itemCount": len(items), "pageCount": count, "items": chunk}
        if op_id == "pathsList":  # runtime state of the configured paths
            page = int(query.get("page", ["0"])[0])
            per = int(query.get("itemsPerPage", ["100"])[0])
            items = [self._runtime(k) for k in sorted(self.paths)]
            count = max(1, -(-len(items) // per)) if items else 0
            chunk = items[page * per : (page + 1) * per]
            return 200, {"itemCount": len(items), "pageCount": count, "items": chunk}
        if op_id == "configPathsGet":
            return (200, self.paths[name]) if name in self.paths else (404, _err("path not found"))
        if op_id == "configPathsAdd":
            if name in self.paths:
                return 400, _err(f"path '{name}' already exists")
            self.paths[name] = {**body, "name": name}
            return 200, ok
        if op_id == "configPathsPatch":
            if name not in self.paths:
                return 404, _err("path not found")
            self.paths[name].update(body)
            return 200, ok
        if op_id == "configPathsDelete":
            if self.paths.pop(name, None) is None:
                return 404, _err("path not found")
            return 200, ok
        if op_id == "authJwksRefresh":
            self.refresh_jwks()
            return 200, ok
        return 500, _err(f"the stand-in does not implement {op_id}")

    def _runtime(self, name: str) -> dict[str, Any]:
        """A ``Path`` of ``/v3/paths/list`` (every field of MediaMTX's schema)."""
        since = self.online.get(name)
        # a pulled path always has its source (MediaMTX answers null only for publisher paths;
        # the validator cannot take null for this allOf, so the stand-in never sends it)
        source = {"type": "rtspSource", "id": ""}
        return {
            "name": name, "confName": name, "source": source, "available": since is not None,
            "availableTime": since, "online": since is not None, "onlineTime": since,
            "ready": since is not None, "readyTime": since, "tracks": [], "tracks2": [],
            "inboundBytes": 0, "outboundBytes": 0, "inboundFramesInError": 0,
            "bytesReceived": 0, "bytesSent": 0, "readers": [],
        }  # fmt: skip

    def _player(self, req: BaseHTTPRequestHandler, path: str, token: str) -> None:
        found = re.match(r"^/(.+)/(whep|index\.m3u8)$", path)
        if found is None or (req.command, found.group(2)) not in (
            ("POST", "whep"),
            ("GET", "index.m3u8"),
        ):
            self._send(req, 404, {"error": f"no player at {req.command} {path}"})
            return
        why = self.authenticate(token, "read", found.group(1))
        if why is not None:
            self.refused.append(why)
            self._send(req, 401, {"status": "error", "error": "authentication error"})
            return
        self._send(req, 201 if found.group(2) == "whep" else 200, {"player": found.group(1)})

    def _violation(self, req: BaseHTTPRequestHandler, what: str) -> None:
        self.violations.append(what)
        self._send(req, 400, _err(what))

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)


def _err(text: str) -> dict[str, str]:
    return {"status": "error", "error": text}
