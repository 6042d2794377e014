"""Flow parameters: declared model, ``--param``/``--params``, ``flows show``, city time zones."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from pydantic import BaseModel, Field

from gtvision.config import load_settings
from gtvision.flows.api import FlowContext, flow
from gtvision.flows.params import ParamsError, flow_params, parse_pairs

from .test_cli_flows import _env

GTV = [sys.executable, "-m", "gtvision.cli"]


class Params(BaseModel):
    window_min: int = Field(default=5, ge=1, description="window length, minutes")
    zone: list[tuple[float, float]] = Field(default_factory=list)
    label: str


@flow(params=Params)
def build(ctx: FlowContext) -> None:
    """A flow with parameters."""


def plain(ctx: FlowContext) -> None:
    """A flow without parameters."""


def test_pairs_and_file_are_validated_by_the_declared_model(tmp_path: Path) -> None:
    file = tmp_path / "p.toml"
    file.write_text('label = "night"\nwindow_min = 3\n')
    got = flow_params(build, ["window_min=10", "zone=[[0,0],[1,0],[1,1]]"], file)
    assert got == Params(window_min=10, zone=[(0, 0), (1, 0), (1, 1)], label="night")
    assert parse_pairs(["a=x=y", "b=1.5"]) == {"a": "x=y", "b": 1.5}
    with pytest.raises(ParamsError, match=r"window_min=0: Input should be greater than"):
        flow_params(build, ["window_min=0", "label=x"])
    with pytest.raises(ParamsError, match=r"unknown parameter\(s\) windw \(it takes: window_min"):
        flow_params(build, ["windw=3", "label=x"])
    with pytest.raises(ParamsError, match=r"label=.*Field required"):
        flow_params(build, [])
    with pytest.raises(ParamsError, match="declares no parameters, got label"):
        flow_params(plain, ["label=x"])
    with pytest.raises(ParamsError, match="expects KEY=VALUE"):
        parse_pairs(["novalue"])


def test_context_gives_typed_params_and_city_time_zones(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO cities (name, timezone) VALUES (%s, 'America/Manaus') RETURNING id",
            (f"manaus-{time.time_ns()}",),
        ).fetchone()
        assert row is not None
    settings = load_settings(database_url=pg_dsn)
    params = Params(label="x")
    ctx = FlowContext(source=None, sink=None, settings=settings, params=params)  # type: ignore[arg-type]
    assert ctx.params_of(Params).window_min == 5
    assert ctx.tz(int(row[0])) == ZoneInfo("America/Manaus")
    assert ctx.tz(999) == ZoneInfo("America/Sao_Paulo")  # GTV_TIMEZONE for unknown cities


def test_flows_show_lists_the_parameters_and_cli_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "pflow.py").write_text(
        "from pydantic import BaseModel, Field\n"
        "from gtvision.flows.api import flow\n"
        "import gtvision.flows.motion as m\n\n"
        "class Params(BaseModel):\n"
        "    window_min: int = Field(5, ge=1, description='window length, minutes')\n\n"
        "@flow(params=Params)\n"
        "def build(ctx):\n"
        "    '''Motion, with a window.'''\n"
        "    return m.build(ctx)\n"
    )
    env = _env(PYTHONPATH=str(tmp_path))
    show = subprocess.run(
        [*GTV, "flows", "show", "pflow:build"], capture_output=True, text=True, env=env
    )
    assert show.returncode == 0, show.stderr
    assert "window_min: int (default 5) — window length, minutes" in show.stdout
    bad = subprocess.run(
        [*GTV, "replay", "nosuch.mp4", "--flow", "pflow:build", "--param", "window_min=zero"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "gtvision: flow pflow:build: invalid parameters: window_min='zero': Input should be a "
        "valid integer, unable to parse string as an integer"
    ]
