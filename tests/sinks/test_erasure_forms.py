"""LGPD erasure of both forms of a plate (old ``ABC1234`` ↔ Mercosul ``ABC1C34``), real Postgres.

The two forms name one vehicle, so an erasure removes the events and forgets the audited
searches of both unless ``equivalent=False`` (exactly the given text).
"""

from __future__ import annotations

import json
import random
import re
import string
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from gtvision.sinks.feed import RedisFeed, stream_key
from gtvision.sinks.objects import S3ObjectStore
from gtvision.sinks.postgres import EventWriter, open_pool
from gtvision.sinks.retention import Purged, Purger, erased_forms, plate_ref

from ..conftest import RedisTarget
from .test_retention import _cli, _feed, _ids, _pass, _world, _write

KEY = b"erasure-test-key"


def _other(plate: str) -> str | None:
    """The other form, written out here independently of ``equivalence`` (the test's oracle)."""
    if re.fullmatch(r"[A-Z]{3}[0-9]{4}", plate):
        return plate[:4] + "ABCDEFGHIJ"[int(plate[4])] + plate[5:]
    if re.fullmatch(r"[A-Z]{3}[0-9][A-J][0-9]{2}", plate):
        return plate[:4] + str("ABCDEFGHIJ".index(plate[4])) + plate[5:]
    return None


def _searched(dsn: str, city: int, plates: list[str]) -> None:
    """Audit rows of searches of each plate: keyed search, keyed export, old clear-text search."""
    with psycopg.connect(dsn) as conn:
        for p in plates:
            ref = plate_ref(KEY, p)
            rows = [
                ("events.search", f"plate:{ref}", {"plate": ref, "equivalent": False}),
                ("events.export", "events", {"filters": {"plate": ref}, "rows": 1}),
                ("events.search", f"plate:{p}", {"plate": p}),  # written by an older version
            ]
            for action, target, detail in rows:
                conn.execute(
                    "INSERT INTO audit_log (username, city_id, action, target, detail, ip)"
                    " VALUES ('analyst', %s, %s, %s, %s::jsonb, '10.0.0.9')",
                    (city, action, target, json.dumps(detail)),
                )


def _audit(dsn: str) -> list[tuple[str, str, dict[str, Any]]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT action, target, detail FROM audit_log ORDER BY id").fetchall()
    return [(str(a), str(t), dict(d)) for a, t, d in rows]


def _search_terms(dsn: str) -> list[str]:
    """The search term of every audited search/export row, in order."""
    out = []
    for action, target, detail in _audit(dsn):
        if action == "events.search":
            out.append(target)
        elif action == "events.export":
            out.append("plate:" + detail["filters"]["plate"])
    return out


@pytest.fixture
def feed_ids(redis_target: RedisTarget, feed_prefix: str) -> Callable[[int], list[str]]:
    """Event ids in a city's live-feed stream."""
    return lambda city: [f["id"] for f in _feed(redis_target.url, stream_key(feed_prefix, city))]


def test_erasure_removes_both_forms_in_scope_and_forgets_their_searches(
    fresh_pg_dsn: str,
    s3_store: S3ObjectStore,
    redis_feed: RedisFeed,
    feed_ids: Callable[[int], list[str]],
) -> None:
    w = _world(fresh_pg_dsn)
    old = [_pass("ABC1234", w.city, w.long, 0.5, n) for n in range(2)]
    new = [_pass("ABC1C34", w.city, w.long, 0.5, n) for n in range(2, 4)]
    kept = [
        _pass("XYZ9876", w.city, w.long, 0.5),  # unrelated
        _pass("ABC1334", w.city, w.long, 0.5),  # differs in the fifth character only
        _pass("ABC1C34", w.other_city, 5, 0.5),  # the same vehicle in another city
    ]
    _write(fresh_pg_dsn, s3_store, redis_feed, [*old, *new, *kept])
    _searched(fresh_pg_dsn, w.city, ["ABC1234", "ABC1C34", "XYZ9876", "ABC1*"])
    purger = Purger(fresh_pg_dsn, s3_store, redis_feed, audit_key=KEY)

    assert purger.erase("abc-1234", city_id=w.city, actor="t", dry_run=True) == Purged(events=4)
    exact = purger.erase("abc-1234", city_id=w.city, actor="t", dry_run=True, equivalent=False)
    assert exact == Purged(events=2)
    assert purger.erase("ABC1C34", city_id=None, actor="t", dry_run=True) == Purged(events=5)
    assert len(_ids(fresh_pg_dsn)) == 7  # dry runs remove nothing

    done = purger.erase("abc-1234", city_id=w.city, actor="dpo", reference="LGPD 2026/31")
    assert done == Purged(events=4, objects=4, feed_entries=4, outbox=4, audit=6)
    assert _ids(fresh_pg_dsn) == {e.id for e in kept}
    assert sorted(feed_ids(w.city)) == sorted(e.id for e in kept[:2])
    assert _search_terms(fresh_pg_dsn) == [
        *["plate:erased"] * 6,  # both forms, keyed and clear, searches and the exports
        f"plate:{plate_ref(KEY, 'XYZ9876')}", f"plate:{plate_ref(KEY, 'XYZ9876')}",
        "plate:XYZ9876",
        f"plate:{plate_ref(KEY, 'ABC1*')}", f"plate:{plate_ref(KEY, 'ABC1*')}",
        "plate:ABC1*",  # wildcard patterns are left as they are
    ]  # fmt: skip
    erase_row = _audit(fresh_pg_dsn)[-1]
    assert erase_row[:2] == ("plate.erase", "plate")
    assert erase_row[2]["equivalent"] is True
    assert erase_row[2]["forms"] == 2
    assert erase_row[2]["events"] == "4"
    assert erase_row[2]["audit"] == "6"
    text = json.dumps([d for a, _, d in _audit(fresh_pg_dsn) if a == "plate.erase"])
    assert "ABC1234" not in text
    assert "ABC1C34" not in text


def test_exact_erasure_keeps_the_other_form_and_a_mercosul_plate_erases_the_old_one(
    fresh_pg_dsn: str, s3_store: S3ObjectStore, redis_feed: RedisFeed
) -> None:
    w = _world(fresh_pg_dsn)
    old = [_pass("ABC1234", w.city, w.long, 0.5), _pass("ABC1234", w.other_city, 5, 0.5)]
    new = [_pass("ABC1C34", w.city, w.long, 0.5)]
    issued_new = [_pass("ABC1K34", w.city, w.long, 0.5)]  # K > J: never had an old form
    _write(fresh_pg_dsn, s3_store, redis_feed, [*old, *new, *issued_new])
    _searched(fresh_pg_dsn, w.city, ["ABC1234", "ABC1C34"])
    purger = Purger(fresh_pg_dsn, s3_store, redis_feed, audit_key=KEY)

    done = purger.erase("ABC1C34", city_id=None, actor="dpo", equivalent=False)
    assert done == Purged(events=1, objects=1, feed_entries=1, outbox=1, audit=3)
    assert _ids(fresh_pg_dsn) == {e.id for e in [*old, *issued_new]}
    ref = plate_ref(KEY, "ABC1234")
    assert _search_terms(fresh_pg_dsn) == [
        f"plate:{ref}", f"plate:{ref}", "plate:ABC1234", *["plate:erased"] * 3,
    ]  # fmt: skip
    assert _audit(fresh_pg_dsn)[-1][2]["equivalent"] is False
    assert _audit(fresh_pg_dsn)[-1][2]["forms"] == 1

    # the Mercosul form names the old one too: both cities' ABC1234 go, ABC1K34 stays
    assert purger.erase("abc1c34", city_id=None, actor="t", dry_run=True).events == 2
    done = purger.erase("abc1c34", city_id=None, actor="dpo")
    assert done == Purged(events=2, objects=2, feed_entries=2, outbox=2, audit=3)
    assert _ids(fresh_pg_dsn) == {e.id for e in issued_new}
    assert _search_terms(fresh_pg_dsn) == ["plate:erased"] * 6
    # a plate without another form erases itself
    assert erased_forms("abc-1k34") == ("ABC1K34",)
    assert purger.erase("ABC1K34", city_id=w.city, actor="dpo").events == 1
    assert _audit(fresh_pg_dsn)[-1][2]["forms"] == 1
    with pytest.raises(ValueError, match=r"letters or digits, got '·-'"):
        purger.erase("·-", city_id=None, actor="t", equivalent=False)


def test_cli_erases_both_forms_unless_exact(
    fresh_pg_dsn: str, service_env: dict[str, str], s3_store: S3ObjectStore
) -> None:
    env = {**service_env, "GTV_DATABASE_URL": fresh_pg_dsn}
    w = _world(fresh_pg_dsn)
    old = [_pass("QRS5678", w.city, w.long, 0.1, n) for n in range(2)]
    new = [_pass("QRS5G78", w.city, w.long, 0.1, n) for n in range(2, 5)]
    with open_pool(fresh_pg_dsn) as pool:  # no live feed here: test_retention's CLI test has it
        EventWriter(pool, s3_store, None).write([*old, *new])
    city = str(w.city)

    helped = _cli(env, "erase", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "--exact" in helped.stdout
    assert "ABC1C34" in helped.stdout
    both = _cli(env, "erase", "qrs-5678", "--city", city, "--dry-run")
    assert json.loads(both.stdout) == {"would_remove": Purged(events=5).as_dict()}, both.stderr
    exact = _cli(env, "erase", "qrs5g78", "--city", city, "--exact")
    assert exact.returncode == 0, exact.stderr
    assert json.loads(exact.stdout)["removed"]["events"] == 3
    assert _ids(fresh_pg_dsn) == {e.id for e in old}
    rest = _cli(env, "erase", "QRS5G78", "--city", city)  # the Mercosul form takes the old one
    assert rest.returncode == 0, rest.stderr
    assert json.loads(rest.stdout)["removed"]["events"] == 2
    assert _ids(fresh_pg_dsn) == set()


def _random_plate(rng: random.Random) -> str:
    letters = "".join(rng.choices(string.ascii_uppercase, k=3))
    if rng.random() < 0.5:  # old
        return letters + "".join(rng.choices(string.digits, k=4))
    return (  # Mercosul, fifth letter A-Z (K-Z: issued new, no old form)
        letters + rng.choice(string.digits) + rng.choice(string.ascii_uppercase)
        + "".join(rng.choices(string.digits, k=2))
    )  # fmt: skip


def _spelled(rng: random.Random, plate: str) -> str:
    """The plate as someone may type it (case, separator)."""
    text = plate.lower() if rng.random() < 0.5 else plate
    return text[:3] + "-" + text[3:] if rng.random() < 0.5 else text


def test_generated_plates_erase_exactly_the_plate_and_its_other_form(
    fresh_pg_dsn: str,
) -> None:
    rng = random.Random(20260531)
    w = _world(fresh_pg_dsn)
    cities = (w.city, w.other_city)
    plates: list[str] = []
    for _ in range(120):
        p = _random_plate(rng)
        plates.append(p)
        other = _other(p)
        if other and rng.random() < 0.5:  # both forms stored
            plates.append(other)
        if rng.random() < 0.3:  # a plate differing in the fifth character only
            fifth = rng.choice(string.digits + string.ascii_uppercase.replace(p[4], ""))
            plates.append(p[:4] + fifth + p[5:])
    cameras = {w.city: w.long, w.other_city: 5}
    events = []
    for n, p in enumerate(plates):
        city = rng.choice(cities)
        events.append(_pass(p, city, cameras[city], 0.5, n))
    with open_pool(fresh_pg_dsn) as pool:
        EventWriter(pool, None, None).write(events)
    with psycopg.connect(fresh_pg_dsn) as conn:  # the oracle agrees with migration 0080
        sql = conn.execute("SELECT DISTINCT plate, gtv_plate_other(plate) FROM events").fetchall()
    assert {(p, o) for p, o in sql} == {(p, _other(p)) for p in plates}
    searched = sorted(set(plates))
    _searched(fresh_pg_dsn, w.city, searched)
    purger = Purger(fresh_pg_dsn, None, None, audit_key=KEY)
    stored = {e.id: (e.plate, e.city_id) for e in events}
    forgotten: set[str] = set()

    targets = rng.sample(plates, 50) + [_random_plate(rng) for _ in range(10)]
    for target in targets:
        other = _other(target)
        forms = {target} if other is None else {target, other}
        assert set(erased_forms(_spelled(rng, target))) == forms
        scope = rng.choice((*cities, None))
        gone = {i for i, (p, c) in stored.items() if p in forms and scope in (None, c)}
        typed = _spelled(rng, target)
        assert purger.erase(typed, city_id=scope, actor="t", dry_run=True).events == len(gone)
        assert purger.erase(typed, city_id=scope, actor="t").events == len(gone), target
        stored = {i: v for i, v in stored.items() if i not in gone}
        assert _ids(fresh_pg_dsn) == set(stored), target
        forgotten |= forms & set(searched)
        terms = _search_terms(fresh_pg_dsn)
        assert terms.count("plate:erased") == 3 * len(forgotten), target
        for p in forgotten:
            assert f"plate:{plate_ref(KEY, p)}" not in terms
            assert f"plate:{p}" not in terms
