from __future__ import annotations

import random
import string
import time
from datetime import UTC, datetime, timedelta

import bytewax.operators as op
import psycopg
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main

from gtvision.events import Alert, Box, PlatePass
from gtvision.operators.hotlist import (
    HotlistEntry,
    HotlistMatcher,
    PgHotlists,
    StaticHotlists,
    alert_for,
    hotlist_alerts,
    load_entries,
)

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def entry(i: int, pattern: str, kind: str, **kw: object) -> HotlistEntry:
    return HotlistEntry(id=i, city_id=3, pattern=pattern, kind=kind, **kw)  # type: ignore[arg-type]


def plate_pass(plate: str, camera: int = 1, t: float = 0.0, crop: bytes | None = None) -> PlatePass:
    ts = NOW + timedelta(seconds=t)
    return PlatePass(
        city_id=3,
        camera_id=camera,
        ts=ts,
        plate=plate,
        confidence=0.9,
        first_seen=ts,
        last_seen=ts + timedelta(seconds=1),
        reads=5,
        box=Box(x1=0, y1=0, x2=10, y2=5),
        crop_jpeg=crop,
    )


ENTRIES = [
    entry(1, "ABC1D23", "exact", reason="stolen"),
    entry(2, "XYZ*", "wildcard", reason="fleet"),
    entry(3, "?BC9K88", "wildcard"),
    entry(4, "OPQ0123", "fuzzy", max_distance=1.0, reason="wanted"),
    entry(5, "EXP1234", "exact", expires_at=NOW - timedelta(minutes=1)),
    entry(6, "FUT1234", "exact", expires_at=NOW + timedelta(days=1)),
]


@pytest.fixture
def matcher() -> HotlistMatcher:
    return HotlistMatcher(ENTRIES)


def ids(m: HotlistMatcher, plate: str) -> list[int]:
    return sorted(e.id for e, _ in m.matches(plate, NOW))


def test_exact_match(matcher: HotlistMatcher) -> None:
    assert ids(matcher, "ABC1D23") == [1]
    assert ids(matcher, "abc-1d23") == [1]
    assert ids(matcher, "ABC1D24") == []


def test_wildcards(matcher: HotlistMatcher) -> None:
    assert ids(matcher, "XYZ1A23") == [2]
    assert ids(matcher, "XY1Z123") == []
    assert ids(matcher, "QBC9K88") == [3]
    assert ids(matcher, "BC9K88") == []  # ? is exactly one character
    assert ids(matcher, "QQBC9K88") == []


def test_fuzzy_accepts_ocr_confusions_not_other_edits(matcher: HotlistMatcher) -> None:
    assert ids(matcher, "OPQ0123") == [4]
    assert ids(matcher, "0PQ0I23") == [4]  # O->0 and 1->I: 0.5 + 0.5
    ((_, dist),) = matcher.matches("0PQ0I23", NOW)
    assert dist == 1.0
    # plain Levenshtein says 2 for that read; a non-confusable edit costs the full 1.0
    assert ids(matcher, "OPQ0K23") == [4]  # 1.0
    assert ids(matcher, "0PQ0K23") == []  # 0.5 + 1.0 > max_distance
    assert ids(matcher, "OPQ0KK3") == []  # 2.0


def test_old_and_mercosul_forms_are_one_vehicle(matcher: HotlistMatcher) -> None:
    # entry 1 is Mercosul ABC1D23: its old form ABC1323 (D is the 4th letter: 3) matches too
    assert ids(matcher, "ABC1323") == [1]
    assert ids(matcher, "abc-1323") == [1]
    assert ids(matcher, "ABC1423") == []  # another vehicle
    # entry 4 is the old OPQ0123 (fuzzy): its Mercosul form reads at distance 0
    assert matcher.matches("OPQ0B23", NOW) == [(ENTRIES[3], 0.0)]
    # wildcards see both forms: ?BC9K88 has no old form (K is after J), XYZ* matches either
    assert ids(matcher, "XYZ1A23") == [2]
    alert = alert_for(plate_pass("ABC1323"), matcher, NOW)
    assert alert is not None
    assert alert.match.entry_id == 1
    assert alert.match.plate_form == "old"
    assert alert.match.equivalent
    direct = alert_for(plate_pass("ABC1D23"), matcher, NOW)
    assert direct is not None
    assert direct.match.plate_form == "mercosul"
    assert not direct.match.equivalent
    assert direct.id != alert.id  # another pass, another alert


def test_expired_entry_never_matches(matcher: HotlistMatcher) -> None:
    assert ids(matcher, "EXP1234") == []
    assert ids(matcher, "FUT1234") == [6]
    later = NOW + timedelta(days=2)
    assert matcher.matches("FUT1234", later) == []


def test_highest_priority_wins() -> None:
    m = HotlistMatcher(
        [
            entry(10, "ABC*", "wildcard", priority=1),
            entry(11, "ABC1234", "fuzzy", priority=5, max_distance=2),
            entry(12, "ABC1234", "exact", priority=1),
        ]
    )
    best = m.best("ABC1234", NOW)
    assert best is not None
    assert best[0].id == 11
    m2 = HotlistMatcher([entry(10, "ABC*", "wildcard"), entry(12, "ABC1234", "exact")])
    best2 = m2.best("ABC1234", NOW)
    assert best2 is not None
    assert best2[0].id == 12  # same priority: exact before wildcard


def test_invalid_patterns_are_rejected() -> None:
    with pytest.raises(ValueError, match="not valid for exact"):
        entry(1, "AB*", "exact")
    with pytest.raises(ValueError, match="not valid for wildcard"):
        entry(1, "AB#", "wildcard")


def test_thousands_of_entries_find_the_right_ones() -> None:
    rnd = random.Random(4)
    alphabet = string.ascii_uppercase
    entries = []
    for i in range(3000):
        letters = "".join(rnd.choices(alphabet, k=3))
        digits = "".join(rnd.choices(string.digits, k=4))
        kind = ("exact", "wildcard", "fuzzy")[i % 3]
        pattern = letters + digits if kind != "wildcard" else letters + digits[:2] + "*"
        entries.append(entry(100 + i, pattern, kind, max_distance=0.5))
    m = HotlistMatcher(entries)
    assert len(m) == 3000
    for e in entries[:60]:
        plate = e.pattern.replace("*", "77")
        if e.kind == "fuzzy":
            plate = plate[:-1] + {"8": "B", "0": "O", "5": "S"}.get(plate[-1], plate[-1])
        assert e.id in {x.id for x, _ in m.matches(plate, NOW)}


def test_alert_carries_the_match_and_a_deterministic_id(matcher: HotlistMatcher) -> None:
    p = plate_pass("0PQ0I23", crop=b"jpeg")
    a = alert_for(p, matcher, NOW)
    assert a is not None
    assert a.type == "alert.triggered"
    assert a.pass_id == p.id
    assert a.plate == "0PQ0I23"
    assert (a.match.entry_id, a.match.kind, a.match.reason) == (4, "fuzzy", "wanted")
    assert a.crop_key == f"3/1/2026/03/01/{p.id}.jpg"
    again = alert_for(p, matcher, NOW)
    assert again is not None
    assert again.id == a.id
    assert alert_for(plate_pass("EXP1234"), matcher, NOW) is None


def test_flow_turns_matching_passes_into_alerts() -> None:
    passes = [
        plate_pass("ABC1D23", t=0),
        plate_pass("XYZ9A99", t=10),
        plate_pass("0PQ0123", t=20),  # OCR read O as 0
        plate_pass("EXP1234", t=30),  # expired entry
        plate_pass("NOP4321", t=40),  # not listed
    ]
    got: list[Alert] = []
    flow = Dataflow("hotlist_test")
    s = op.input("in", flow, TestingSource(passes))
    alerts = hotlist_alerts("hot", s, StaticHotlists(ENTRIES), clock=lambda: NOW)
    op.output("out", alerts, TestingSink(got))
    run_main(flow)  # type: ignore[no-untyped-call]
    assert [(a.plate, a.match.entry_id) for a in got] == [
        ("ABC1D23", 1),
        ("XYZ9A99", 2),
        ("0PQ0123", 4),
    ]


def _insert(dsn: str, city: int, pattern: str, kind: str, expires: datetime | None = None) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "INSERT INTO hotlists (city_id, pattern, kind, max_distance, priority, reason,"
            " expires_at) VALUES (%s, %s, %s, 1, 2, 'test', %s) RETURNING id",
            (city, pattern, kind, expires),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_loads_from_postgres_and_refreshes(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute(
            "INSERT INTO cities (name) VALUES (%s) RETURNING id", (f"hot-{time.time_ns()}",)
        ).fetchone()
    assert row is not None
    city = int(row[0])
    exact_id = _insert(pg_dsn, city, "PGX1A23", "exact")
    _insert(pg_dsn, city, "OLD1234", "exact", datetime.now(UTC) - timedelta(hours=1))
    fuzzy_id = _insert(pg_dsn, city, "FUZ8B00", "fuzzy")

    loaded = [e for e in load_entries(pg_dsn) if e.city_id == city]
    assert sorted(e.pattern for e in loaded) == ["FUZ8B00", "PGX1A23"]

    clock = [0.0]
    store = PgHotlists(pg_dsn, refresh_s=5.0, monotonic=lambda: clock[0])
    now = datetime.now(UTC)
    hit = store.matcher(city).best("PGX1A23", now)
    assert hit is not None
    assert hit[0].id == exact_id
    fuzzy = store.matcher(city).best("FUZBB0O", now)  # 8->B and 0->O: 1.0
    assert fuzzy is not None
    assert fuzzy[0].id == fuzzy_id
    assert store.matcher(city).best("OLD1234", now) is None

    new_id = _insert(pg_dsn, city, "NEW*", "wildcard")  # added while the flow runs
    assert store.matcher(city).best("NEW9Z99", now) is None  # not yet refreshed
    clock[0] = 6.0
    store.matcher(city)  # starts the background reload
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        hit = store.matcher(city).best("NEW9Z99", now)
        if hit is not None:
            break
        time.sleep(0.05)
    assert hit is not None
    assert hit[0].id == new_id
