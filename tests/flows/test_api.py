"""The public flow API: blocks usable twice, safe custom events, readable flow errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import ClassVar, Literal

import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, run_main

from gtvision.config import load_settings
from gtvision.events import EventBase, MotionIncident, parse_event
from gtvision.flows.api import FlowContext, motion_incidents, to_sink, video_front
from gtvision.sources.file import FileSource
from gtvision.sources.testvideo import make_video, moving_box

from .test_cli_flows import _env

GTV = [sys.executable, "-m", "gtvision.cli"]


@pytest.fixture(scope="module")
def small_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("api") / "moving.mp4"
    return make_video(path, duration=4, size=(320, 180), fps=10, filters=[moving_box(1, 2.5)])


def test_every_block_can_be_used_twice_in_one_flow(small_video: Path) -> None:
    got: list[EventBase] = []
    a = FileSource(small_video, camera_id=1, analysis_fps=0)
    b = FileSource(small_video, camera_id=2, analysis_fps=0)
    ctx = FlowContext(source=a, sink=TestingSink(got), settings=load_settings(), replay=True)
    flow = Dataflow("twice")
    front_a = video_front("front_a", flow, ctx)
    front_b = video_front("front_b", flow, ctx, source=b)
    inc_a = motion_incidents("inc_a", front_a.results, ctx)
    inc_b = motion_incidents("inc_b", front_b.results, ctx)
    to_sink("out_a", ctx, inc_a)
    to_sink("out_b", ctx, inc_b, front_b.health)
    run_main(flow)  # type: ignore[no-untyped-call]
    incidents = [e for e in got if isinstance(e, MotionIncident)]
    assert sorted(e.camera_id for e in incidents) == [1, 2]
    assert incidents[0].start == incidents[1].start  # same video, same event times


def test_custom_event_without_identity_fails_at_class_definition() -> None:
    with pytest.raises(TypeError, match=r"event class Hit has no identity: add identity"):

        class Hit(EventBase):
            type: Literal["hit"] = "hit"

    with pytest.raises(TypeError, match=r"identity names \['when'\], which are not fields"):

        class Typo(EventBase):
            identity: ClassVar[tuple[str, ...]] = ("when",)
            type: Literal["typo"] = "typo"


FLOW_HEAD = (
    "import bytewax.operators as op\n"
    "from typing import ClassVar, Literal\n"
    "from bytewax.dataflow import Dataflow\n"
    "from gtvision.events import EventBase\n"
    "from gtvision.flows.api import to_sink, video_front\n\n"
    "class Hit(EventBase):\n"
    "    identity: ClassVar[tuple[str, ...]] = ('ts',)\n"
    "    type: Literal['hit'] = 'hit'\n"
    "    score: int\n\n"
    "def build(ctx):\n"
    "    flow = Dataflow('mine')\n"
    "    front = video_front('video', flow, ctx)\n"
)


def _replay_flow(tmp_path: Path, video: Path, body: str, *extra: str) -> list[str]:
    (tmp_path / "badflow.py").write_text(FLOW_HEAD + body + "    return flow\n")
    proc = subprocess.run(
        [*GTV, "replay", str(video), "--flow", "badflow:build", "-q", *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(PYTHONPATH=str(tmp_path)),
    )
    assert proc.returncode == 1, proc.stderr
    return proc.stderr.splitlines()


def test_a_dict_sent_to_the_sink_is_one_clear_line(small_video: Path, tmp_path: Path) -> None:
    body = (
        "    ev = op.map('hits', front.gated, lambda mf: {'type': 'hit', 'ts': mf.frame.ts})\n"
        "    to_sink('out', ctx, ev)\n"
    )
    lines = _replay_flow(tmp_path, small_video, body)
    assert lines[0].startswith(
        "gtvision: FlowValueError: step 'mine.hits' sent a dict to the sink, not an event: "
        "{'type': 'hit', 'ts': datetime.datetime("
    ), lines
    assert not any("panicked" in line or "Box<dyn Any>" in line for line in lines)
    assert len(lines) <= 3, lines


def test_a_validation_error_in_a_user_step_is_shown_whole(
    small_video: Path, tmp_path: Path
) -> None:
    body = (
        "    ev = op.map('hits', front.gated, lambda mf: Hit(city_id=0, camera_id=-1,\n"
        "        ts=mf.frame.ts, score='lots'))\n"
        "    to_sink('out', ctx, ev)\n"
    )
    lines = _replay_flow(tmp_path, small_video, body)
    assert lines[0] == "gtvision: ValidationError: 2 validation errors for Hit", lines
    text = "\n".join(lines)
    assert "camera_id\n  Input should be greater than or equal to 0" in text
    assert "score\n  Input should be a valid integer" in text
    assert "(in step 'mine.hits')" in text
    assert "panicked" not in text
    assert "Traceback" not in text
    verbose = "\n".join(_replay_flow(tmp_path, small_video, body, "-v"))
    assert "Traceback" in verbose
    assert "panicked" in verbose


def test_built_in_flows_run_on_the_api(small_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        [*GTV, "replay", str(small_video), "--jsonl", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stderr
    (event,) = [parse_event(line) for line in out.read_text().splitlines()]
    assert isinstance(event, MotionIncident)
