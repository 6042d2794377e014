"""JSON logs with context, credential redaction, and the suite's log scanner."""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gtvision import logs
from tests.conftest import free_port, interrupt
from tests.logscan import REQUIRED_KEYS, malformed, scan

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
LEAKS = {
    "password in a URL": "connecting to postgresql://gtv:hunter2hunter2@db:5432/gtv failed",
    "bearer token": "Authorization: Bearer abcdefghijklmnop0123",
    "JWT": f"token was {JWT}",
    "token/signature in a query": "GET /stream/events?token=s3cr3tvalue&types=x",
}


def _record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("rtsp://cam:campass123@10.0.0.1/live broke")
        except ValueError:
            info = sys.exc_info()
    return logging.LogRecord("gtvision.test", logging.WARNING, __file__, 1, msg, args, info)


def test_json_line_has_every_field_and_the_context() -> None:
    fmt = logs.JsonFormatter()
    plain = json.loads(fmt.format(_record("hello %s", "world")))
    assert list(plain)[: len(REQUIRED_KEYS)] == list(REQUIRED_KEYS)
    assert plain["msg"] == "hello world"
    assert plain["level"] == "WARNING"
    assert plain["logger"] == "gtvision.test"
    assert plain["request_id"] is None
    assert plain["ts"].endswith("+00:00")
    with logs.bound(request_id="r-1", city_id=7, camera_id=42, event_id="e-9"):
        inner = json.loads(fmt.format(_record("x", exc=True)))
    assert (inner["request_id"], inner["city_id"], inner["camera_id"]) == ("r-1", 7, 42)
    assert inner["event_id"] == "e-9"
    assert "ValueError" in inner["exc"]
    assert "campass123" not in inner["exc"]
    assert "rtsp://cam:***@10.0.0.1" in inner["exc"]
    assert logs.context() == dict.fromkeys(logs.CONTEXT)  # the block restored everything


@pytest.mark.parametrize(("what", "line"), sorted(LEAKS.items()))
def test_scanner_finds_each_leak_and_redaction_removes_it(what: str, line: str) -> None:
    assert [f.what for f in scan(line)] == [what]
    assert scan(logs.redact(line)) == []
    text = logs.TextFormatter().format(_record(line.replace("%", "%%")))
    assert scan(text) == []


def test_scanner_finds_known_secrets_hashes_and_password_fields() -> None:
    found = scan(
        'a\nlogin {"username": "x", "password": "hunter2"}\n$argon2id$v=19$m=65536\nkey correct '
        "horse battery\nnothing: rtsp://user:***@cam/ and Bearer ***\n"
    )
    assert [(f.line_no, f.what) for f in found] == [
        (2, "password field"),
        (3, "argon2 hash"),
        (4, "known secret"),
    ]
    assert scan("value 0123456789", secrets=["0123456789"])[0].what == "known secret"
    assert malformed('{"ts": 1}\nnot json\n')[0].what.startswith("missing keys")


_PASSWORDS = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/@\"'\\"),
    min_size=1,
    max_size=40,
).filter(lambda p: p != "***")


@given(scheme=st.sampled_from(["postgresql", "amqp", "redis", "rtsp", "http"]), pw=_PASSWORDS)
def test_no_url_password_survives_redaction(scheme: str, pw: str) -> None:
    line = f"failed {scheme}://user:{pw}@host:1/x (retry)"
    assert logs.redact(line) == f"failed {scheme}://user:***@host:1/x (retry)"
    assert scan(logs.redact(line)) == []


def test_run_logs_json_lines_with_the_camera_to_stderr_and_file(tmp_path: Path) -> None:
    port = free_port()  # nothing listens: the camera is refused
    log_file = tmp_path / "gtv.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GTV_")}
    env.update(
        {
            "GTV_RTSP_URLS": f"rtsp://viewer:campass123@127.0.0.1:{port}/cam",
            "GTV_LOG_FORMAT": "json",
            "GTV_LOG_FILE": str(log_file),
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gtvision.cli", "run", "motion", "--jsonl", str(tmp_path / "o")],
        env=env,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    raw = b""
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and b"offline" not in raw and proc.poll() is None:
            if select.select([proc.stderr], [], [], 0.5)[0]:
                raw += os.read(proc.stderr.fileno(), 65536)  # unbuffered: select stays truthful
    finally:
        interrupt(proc, 20)
    lines = [x for x in raw.decode().splitlines(keepends=True) if x.strip()]
    offline = [json.loads(x) for x in lines if "offline" in x]
    assert offline, f"no offline line in: {lines}"
    assert offline[0]["camera_id"] == 1_000_001
    assert offline[0]["level"] == "WARNING"
    assert malformed("".join(lines)) == []
    text = "".join(lines) + log_file.read_text()
    assert "campass123" not in text
    assert any("offline" in json.loads(x)["msg"] for x in log_file.read_text().splitlines())


def test_setup_replaces_only_its_own_handlers_and_follows_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    foreign = logging.NullHandler()
    root.addHandler(foreign)
    level = root.level
    try:
        logs.setup("INFO", "json", tmp_path / "a.jsonl")
        logs.setup("INFO", "text", None)  # as `gtvision.cli.main` run twice in one process
        ours = [h for h in root.handlers if getattr(h, "_gtvision_logging", False)]
        assert [type(h) for h in ours] == [logs.StderrHandler]
        assert foreign in root.handlers
        logging.getLogger("gtvision.test").warning("to the current stderr")
        assert "to the current stderr" in capsys.readouterr().err
    finally:
        for handler in [h for h in root.handlers if isinstance(h, logs.StderrHandler)]:
            root.removeHandler(handler)
        root.removeHandler(foreign)
        root.setLevel(level)
