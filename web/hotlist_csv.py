"""Hotlist CSV files: parse and check every row before anything is stored.

The header names the columns (any order, case-insensitive): ``pattern`` is required;
``kind``, ``max_distance``, ``priority``, ``reason`` and ``expires_at`` are optional. The
delimiter is ``,`` or ``;`` (what Brazilian spreadsheets write), found from the header line.
``expires_at`` is an ISO 8601 time with offset, or a date (``2026-12-31`` or ``31/12/2026``)
meaning the end of that day in the city's time zone. Each row is validated with the same model
as ``POST /hotlists`` (the plate as printed, ``KLM-3907``, is normalised), so an import accepts
exactly what the API accepts.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from gtvision.web.models import HotlistIn
from gtvision.web.problems import error_context

MAX_ROWS = 10_000
COLUMNS = ("pattern", "kind", "max_distance", "priority", "reason", "expires_at")


@dataclass
class Parsed:
    """Valid entries and every problem found (``line`` counts the header as line 1)."""

    entries: list[HotlistIn] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def _expiry(text: str, zone: ZoneInfo) -> str:
    """A date alone means the end of that day in ``zone``; anything else goes to the model."""
    day: date | None = None
    try:
        if len(text) == 10 and text[4] == "-":
            day = date.fromisoformat(text)
        elif len(text) == 10 and text[2] == "/" and text[5] == "/":
            day = date(int(text[6:]), int(text[3:5]), int(text[:2]))
    except ValueError:
        return text  # the model reports it
    if day is None:
        return text
    end = datetime.combine(day + timedelta(days=1), time(), zone) - timedelta(microseconds=1)
    return end.isoformat()


def _row_error(line: int, msg: str, kind: str, **ctx: int) -> dict[str, Any]:
    """A problem of a whole row: ``type`` and ``ctx`` let clients word it themselves."""
    return {"line": line, "field": "", "msg": msg, "type": kind, "ctx": ctx}


def parse(text: str, zone: ZoneInfo) -> Parsed:
    """All rows of ``text`` as :class:`HotlistIn`, or the errors of the rows that fail."""
    out = Parsed()
    body = text.lstrip("\ufeff")  # a BOM from spreadsheet exports
    first = body.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(body), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader, [])]
    unknown = [h for h in header if h not in COLUMNS]
    if "pattern" not in header or unknown:
        msg = f"header must name 'pattern' and only {', '.join(COLUMNS)}; got {header}"
        out.errors.append({"line": 1, "field": "header", "msg": msg, "type": "csv_header"})
        return out
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(out.entries) + len(out.errors) >= MAX_ROWS:
            out.errors.append(
                _row_error(line, f"more than {MAX_ROWS} rows", "csv_rows", max=MAX_ROWS)
            )
            break
        if len(cells) != len(header):
            msg = f"{len(cells)} cells, the header has {len(header)}"
            out.errors.append(
                _row_error(line, msg, "csv_cells", cells=len(cells), columns=len(header))
            )
            continue
        values = {h: c.strip() for h, c in zip(header, cells, strict=True) if c.strip()}
        if "expires_at" in values:
            values["expires_at"] = _expiry(values["expires_at"], zone)
        try:
            out.entries.append(HotlistIn.model_validate(values))
        except ValidationError as err:
            for e in err.errors(include_url=False, include_input=False):
                where = ".".join(str(p) for p in e["loc"])
                out.errors.append(
                    {"line": line, "field": where, "msg": e["msg"], "type": e["type"],
                     "ctx": error_context(e)}
                )  # fmt: skip
    return out
