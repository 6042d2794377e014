"""Roles, permissions, passwords and tokens.

* Passwords: argon2id (argon2-cffi).
* Access and stream tokens: JWT, HS256 only (the algorithm is pinned on decode, so ``alg: none``
  and RS/HS confusion are refused), short-lived, ``typ`` claim ``access`` or ``stream``.
* Refresh tokens: opaque random strings; Redis holds ``sha256(token) -> user id:family`` with a
  TTL. A login starts a family (one session); each refresh consumes the old token atomically
  (GETDEL), remembers its hash as used and issues a new one of the same family (rotation).
  Presenting a used token again revokes the whole family (reuse detection: whoever holds the
  newer token, thief or owner, must log in again); logout revokes the family too.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ALGORITHM = "HS256"
_MEMO_SIZE = 10_000
_HASHER = PasswordHasher()
# A real hash to compare against for unknown users, so timing does not reveal who exists.
_DUMMY_HASH = _HASHER.hash("gtvision-no-such-user")


class Role(StrEnum):
    """User roles. Only ``admin`` crosses cities."""

    ADMIN = "admin"
    CITY_ADMIN = "city_admin"
    OPERATOR = "operator"
    ANALYST = "analyst"
    VIEWER = "viewer"


class Perm(StrEnum):
    """Permissions a route can require (declared in its ``@endpoint``)."""

    ME = "me"
    CITIES_READ = "cities:read"
    CITIES_WRITE = "cities:write"
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    CAMERAS_READ = "cameras:read"
    CAMERAS_WRITE = "cameras:write"
    EVENTS_READ = "events:read"
    EVENTS_EXPORT = "events:export"
    STREAM = "stream"
    HOTLISTS_READ = "hotlists:read"
    HOTLISTS_WRITE = "hotlists:write"
    ALERTS_ACK = "alerts:ack"
    AUDIT_READ = "audit:read"
    DATA_ERASE = "data:erase"


_BASE = {Perm.ME, Perm.CITIES_READ, Perm.CAMERAS_READ, Perm.EVENTS_READ, Perm.STREAM}
ROLE_PERMS: dict[Role, frozenset[Perm]] = {
    Role.ADMIN: frozenset(Perm),
    Role.CITY_ADMIN: frozenset(Perm) - {Perm.CITIES_WRITE},
    Role.OPERATOR: frozenset(_BASE | {Perm.HOTLISTS_READ, Perm.ALERTS_ACK}),
    Role.ANALYST: frozenset(_BASE | {Perm.HOTLISTS_READ, Perm.EVENTS_EXPORT}),
    Role.VIEWER: frozenset(_BASE),
}


class AuthError(Exception):
    """A credential or token was refused (answered as 401)."""


class TokenTypeError(AuthError):
    """A valid token of a type the route does not take (e.g. an access token in ``?token=``)."""


def _check_type(typ: str, allowed: frozenset[str]) -> None:
    if typ not in allowed:
        msg = f"token of type {typ!r} is not accepted here"
        raise TokenTypeError(msg)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    user_id: int
    username: str
    role: Role
    city_id: int | None
    gen: int = 0  # token generation (web/revocation.py): of the user at login, of the token after

    @property
    def is_admin(self) -> bool:
        """True for the cross-city ``admin`` role."""
        return self.role is Role.ADMIN

    def can(self, perm: Perm) -> bool:
        """Whether the role grants ``perm``."""
        return perm in ROLE_PERMS[self.role]

    def scope(self, requested: int | None = None) -> int | None:
        """The city a query is limited to: own city for everyone but admin (``None`` = all)."""
        return requested if self.is_admin else self.city_id


def hash_password(password: str) -> str:
    """argon2id hash of ``password``."""
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Check ``password``; with ``stored_hash=None`` burn the same time and return False."""
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def bearer_token(scope: Mapping[str, Any]) -> str:
    """The token of the first ``Authorization`` header if its scheme is Bearer, else ``""``.

    Any spelling of the scheme; read from the raw ASGI headers (no ``Headers`` object per
    request). Shared by the endpoints' authentication and the rate limiter's caller key.
    """
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, rest = value.decode("latin-1").partition(" ")
            return rest.strip() if scheme.lower() == "bearer" else ""
    return ""


@dataclass(frozen=True, slots=True)
class TokenIssuer:
    """Issues and checks JWTs with one HS256 secret."""

    secret: bytes
    access_ttl_s: int
    stream_ttl_s: int
    _seen: dict[str, tuple[Principal, str, int]] = field(default_factory=dict, repr=False)

    def issue(self, who: Principal, typ: str = "access") -> tuple[str, int]:
        """A signed token for ``who``; returns ``(token, ttl seconds)``."""
        ttl = self.access_ttl_s if typ == "access" else self.stream_ttl_s
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": str(who.user_id),
            "name": who.username,
            "role": who.role.value,
            "city": who.city_id,
            "typ": typ,
            "gen": who.gen,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM), ttl

    def verify(self, token: str, allowed: frozenset[str]) -> Principal:
        """Decode ``token``; raise :class:`AuthError` unless valid and of an allowed ``typ``.

        Tokens that verified once are remembered (exact string → principal, typ, exp), so a
        client's repeated requests skip the HMAC and JSON work; expiry and typ are still
        checked on every use. Only valid tokens enter the memo.
        """
        hit = self._seen.get(token)
        if hit is not None:
            who, typ, exp = hit
            if exp <= time.time():
                del self._seen[token]
                msg = "token expired"
                raise AuthError(msg)
            _check_type(typ, allowed)
            return who
        who, typ, exp = self._decode(token)
        _check_type(typ, allowed)
        if len(self._seen) >= _MEMO_SIZE:
            self._seen.clear()
        self._seen[token] = (who, typ, exp)
        return who

    def _decode(self, token: str) -> tuple[Principal, str, int]:
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "iat", "sub", "typ"]},
            )
        except jwt.ExpiredSignatureError:
            msg = "token expired"
            raise AuthError(msg) from None
        except jwt.InvalidTokenError as err:
            msg = f"invalid token: {err}"
            raise AuthError(msg) from None
        try:
            city = claims.get("city")
            who = Principal(
                user_id=int(claims["sub"]),
                username=str(claims.get("name", "")),
                role=Role(claims["role"]),
                city_id=None if city is None else int(city),
                gen=int(claims.get("gen", 0)),
            )
            return who, str(claims["typ"]), int(claims["exp"])
        except (KeyError, ValueError, TypeError) as err:
            msg = f"invalid token claims: {err}"
            raise AuthError(msg) from None


def new_refresh_token() -> str:
    """A fresh opaque refresh token."""
    return secrets.token_urlsafe(32)


def refresh_key(prefix: str, token: str) -> str:
    """Redis key holding ``user id:family`` of a live refresh token (only its hash is stored)."""
    return f"{prefix}refresh:{hashlib.sha256(token.encode()).hexdigest()}"


def used_key(prefix: str, token: str) -> str:
    """Redis key remembering a rotated-away refresh token (to detect its reuse)."""
    return f"{prefix}refresh-used:{hashlib.sha256(token.encode()).hexdigest()}"


def family_key(prefix: str, family: str) -> str:
    """Redis key that exists while the session ``family`` is not revoked."""
    return f"{prefix}refresh-family:{family}"
