"""Cities and users (``admin`` everywhere, ``city_admin`` inside their own city)."""

from __future__ import annotations

from typing import Any

from psycopg import errors as pgerr
from starlette.responses import Response
from starlette.routing import Route

from gtvision.web.auth import Perm, Role, hash_password
from gtvision.web.common import audit, ok, scoped_row, scoped_rows
from gtvision.web.endpoint import Call, endpoint
from gtvision.web.models import CityIn, CityPatch, CityQuery, UserIn, UserPatch
from gtvision.web.problems import ApiError, not_found
from gtvision.web.revocation import GONE

_CITY_COLS = "id, name, timezone, created_at, updated_at"
_USER_COLS = "id, username, role, city_id, disabled, created_at, updated_at"


@endpoint(Perm.CITIES_READ, "List cities (own city unless admin)")
async def list_cities(call: Call) -> Response:
    """Cities visible to the caller."""
    rows = await scoped_rows(call, "cities", _CITY_COLS, call.user.scope(), city_col="id")
    return ok({"items": rows})


@endpoint(
    Perm.CITIES_WRITE, "Create a city", body=CityIn, responses={201: "created", 409: "exists"}
)
async def create_city(call: Call) -> Response:
    """Add a city (admin)."""
    body = call.body(CityIn)
    async with call.state.pool.connection() as conn:
        try:
            cur = await conn.execute(
                f"INSERT INTO cities (name, timezone) VALUES (%s, %s) RETURNING {_CITY_COLS}",
                (body.name, body.timezone),
            )
        except pgerr.UniqueViolation:
            raise ApiError(409, f"city {body.name!r} already exists") from None
        row = await cur.fetchone()
        assert row is not None
        await audit(
            conn, call.user, "city.create", f"city:{row['id']}", call.ip, {"name": body.name}
        )
    return ok(row, 201)


async def _city_row(call: Call, city_id: int) -> dict[str, Any]:
    return await scoped_row(call, "cities", _CITY_COLS, city_id, "city", city_col="id")


@endpoint(Perm.CITIES_READ, "One city")
async def get_city(call: Call) -> Response:
    """A city (own city unless admin)."""
    return ok(await _city_row(call, call.path_int("city_id")))


@endpoint(Perm.CITIES_WRITE, "Change a city", body=CityPatch)
async def patch_city(call: Call) -> Response:
    """Rename a city or change its time zone (admin)."""
    city_id = call.path_int("city_id")
    changes = call.body(CityPatch).model_dump(exclude_unset=True, exclude_none=True)
    await _city_row(call, city_id)
    async with call.state.pool.connection() as conn:
        sets = ", ".join(f"{k} = %({k})s" for k in changes)
        try:
            cur = await conn.execute(
                f"UPDATE cities SET {sets + ', ' if sets else ''}updated_at = now() "
                f"WHERE id = %(id)s RETURNING {_CITY_COLS}",
                {**changes, "id": city_id},
            )
        except pgerr.UniqueViolation:
            raise ApiError(409, f"city name {changes.get('name')!r} already exists") from None
        row = await cur.fetchone()
        await audit(conn, call.user, "city.update", f"city:{city_id}", call.ip, changes)
    return ok(row)


@endpoint(Perm.CITIES_WRITE, "Delete a city and everything in it")
async def delete_city(call: Call) -> Response:
    """Delete a city (cascades to its users, cameras, hotlists)."""
    city_id = call.path_int("city_id")
    await _city_row(call, city_id)
    async with call.state.pool.connection() as conn:
        cur = await conn.execute("DELETE FROM users WHERE city_id = %s RETURNING id", (city_id,))
        gone = [int(r["id"]) for r in await cur.fetchall()]
        await conn.execute("DELETE FROM cities WHERE id = %s", (city_id,))
        await audit(conn, call.user, "city.delete", f"city:{city_id}", call.ip)
    await _revoked(call, {uid: GONE for uid in gone})
    return Response(status_code=204)


async def _revoked(call: Call, gens: dict[int, int]) -> None:
    """Publish committed token generations (``web/revocation.py``) to every process."""
    revocation = call.state.revocation
    assert revocation is not None
    for user_id, gen in gens.items():
        await revocation.publish(user_id, gen)


@endpoint(Perm.USERS_READ, "List users", query=CityQuery)
async def list_users(call: Call) -> Response:
    """Users of the caller's city (admin: all, or ``?city_id=``)."""
    city = call.user.scope(call.query(CityQuery).city_id)
    return ok({"items": await scoped_rows(call, "users", _USER_COLS, city)})


@endpoint(Perm.USERS_WRITE, "Create a user", body=UserIn, responses={201: "created", 409: "exists"})
async def create_user(call: Call) -> Response:
    """Add a user; a city_admin creates non-admin users of their own city only."""
    body = call.body(UserIn)
    who = call.user
    city_id = body.city_id if who.is_admin else who.city_id
    if body.role is Role.ADMIN:
        if not who.is_admin:
            msg = "only an admin can create admin users"
            raise ApiError(403, msg)
        city_id = None
    elif city_id is None:
        raise ApiError(422, f"role {body.role.value!r} needs a city_id")
    async with call.state.pool.connection() as conn:
        try:
            cur = await conn.execute(
                "INSERT INTO users (username, password_hash, role, city_id) "
                f"VALUES (%s, %s, %s, %s) RETURNING {_USER_COLS}",
                (body.username, hash_password(body.password), body.role.value, city_id),
            )
        except pgerr.UniqueViolation:
            raise ApiError(409, f"user {body.username!r} already exists") from None
        except pgerr.ForeignKeyViolation:
            raise not_found(city_id, kind="city") from None
        row = await cur.fetchone()
        assert row is not None
        await audit(
            conn,
            who,
            "user.create",
            f"user:{row['id']}",
            call.ip,
            {"username": body.username, "role": body.role.value, "city_id": city_id},
        )
    return ok(row, 201)


async def _user_row(call: Call, user_id: int) -> dict[str, Any]:
    return await scoped_row(call, "users", _USER_COLS, user_id, "user")


@endpoint(Perm.USERS_READ, "One user")
async def get_user(call: Call) -> Response:
    """A user of the caller's city."""
    return ok(await _user_row(call, call.path_int("user_id")))


@endpoint(Perm.USERS_WRITE, "Change a user", body=UserPatch)
async def patch_user(call: Call) -> Response:
    """Change password, role or disabled flag."""
    user_id = call.path_int("user_id")
    body = call.body(UserPatch)
    await _user_row(call, user_id)
    if body.role is Role.ADMIN and not call.user.is_admin:
        msg = "only an admin can grant the admin role"
        raise ApiError(403, msg)
    if body.role is Role.ADMIN:
        msg = "turn a user into an admin by creating a new admin user"
        raise ApiError(422, msg)
    changes: dict[str, Any] = {}
    if body.password is not None:
        changes["password_hash"] = hash_password(body.password)
    if body.role is not None:
        changes["role"] = body.role.value
    if body.disabled is not None:
        changes["disabled"] = body.disabled
    # a new password or role, or disabling, revokes every token issued before
    revoke = body.password is not None or body.role is not None or body.disabled is True
    sets = "".join(f"{k} = %({k})s, " for k in changes)
    if revoke:
        sets += "token_gen = token_gen + 1, "
    async with call.state.pool.connection() as conn:
        cur = await conn.execute(
            f"UPDATE users SET {sets}updated_at = now() WHERE id = %(id)s "
            f"RETURNING {_USER_COLS}, token_gen",
            {**changes, "id": user_id},
        )
        row = await cur.fetchone()
        assert row is not None
        gen = row.pop("token_gen")
        shown = {k: ("***" if k == "password_hash" else v) for k, v in changes.items()}
        await audit(conn, call.user, "user.update", f"user:{user_id}", call.ip, shown)
    if revoke:
        await _revoked(call, {user_id: int(gen)})
    return ok(row)


@endpoint(Perm.USERS_WRITE, "Delete a user")
async def delete_user(call: Call) -> Response:
    """Remove a user of the caller's city."""
    user_id = call.path_int("user_id")
    await _user_row(call, user_id)
    async with call.state.pool.connection() as conn:
        await conn.execute("DELETE FROM users WHERE id = %s", (user_id,))
        await audit(conn, call.user, "user.delete", f"user:{user_id}", call.ip)
    await _revoked(call, {user_id: GONE})
    return Response(status_code=204)


ROUTES = [
    Route("/cities", list_cities, methods=["GET"]),
    Route("/cities", create_city, methods=["POST"]),
    Route("/cities/{city_id:int}", get_city, methods=["GET"]),
    Route("/cities/{city_id:int}", patch_city, methods=["PATCH"]),
    Route("/cities/{city_id:int}", delete_city, methods=["DELETE"]),
    Route("/users", list_users, methods=["GET"]),
    Route("/users", create_user, methods=["POST"]),
    Route("/users/{user_id:int}", get_user, methods=["GET"]),
    Route("/users/{user_id:int}", patch_user, methods=["PATCH"]),
    Route("/users/{user_id:int}", delete_user, methods=["DELETE"]),
]
