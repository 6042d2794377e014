"""Every code block of docs/flows.md runs: files are written, Python executed, commands run.

* a block whose first line is a comment naming a file (``# myflows/people.py``, ``# params.toml``)
  is written there, in a scratch directory that also holds the videos the commands name;
* other ``python`` blocks are executed; ``json`` blocks are zones/lines and are validated;
* each ``gtvision …`` line of a ``sh`` block runs in-process in that directory and must exit 0;
  ``gtvision run`` lines (live cameras) must parse, then stop at the missing camera list.
* every name of ``gtvision.flows.api.__all__`` is in the reference table.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import sys
from pathlib import Path

import pytest

import gtvision.flows.api as api
from gtvision.cli import main
from gtvision.operators.geometry import ZONE_LIST
from gtvision.sources.testvideo import make_video, moving_box

DOC = Path(__file__).resolve().parents[2] / "docs" / "flows.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)
NAMED = re.compile(r"^# ([\w/.-]+\.(?:py|toml|csv))\n")


def blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(DOC.read_text("utf-8"))]


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    video = make_video(
        tmp_path / "street.mp4", duration=3, size=(240, 160), fps=10, filters=[moving_box(1, 2)]
    )
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        (tmp_path / name).symlink_to(video)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for key in [k for k in os.environ if k.startswith("GTV_")]:
        monkeypatch.delenv(key)
    return tmp_path


def test_every_snippet_of_the_flows_tutorial_runs(
    scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ran = {"file": 0, "python": 0, "json": 0, "command": 0}
    for lang, code in blocks():
        named = NAMED.match(code)
        if named:
            target = scratch / named.group(1)
            target.parent.mkdir(parents=True, exist_ok=True)
            # the naming comment stays in Python and TOML; a CSV starts with its header
            body = code[named.end() :] if target.suffix == ".csv" else code
            target.write_text(body, "utf-8")
            ran["file"] += 1
            if target.suffix == ".py":
                importlib.import_module(named.group(1)[:-3].replace("/", "."))
        elif lang == "python":
            exec(compile(code, str(DOC), "exec"), {"__name__": "doc_snippet"})
            ran["python"] += 1
        elif lang == "json":
            assert ZONE_LIST.validate_json(code)
            ran["json"] += 1
        elif lang == "sh":
            for line in code.strip().splitlines():
                argv = shlex.split(line)
                assert argv[0] == "gtvision", line
                code_ = _run(argv[1:], capsys)
                if argv[1] == "run":  # live: arguments and parameters pass, no camera to read
                    assert code_ == 2, line
                    assert "no cameras to read" in capsys.readouterr().err, line
                else:
                    assert code_ == 0, (line, capsys.readouterr())
                ran["command"] += 1
    assert ran["file"] >= 8
    assert ran["command"] >= 10
    assert (scratch / "out.jsonl").read_text().count('"motion.incident"') == 1
    assert '"precision": 1.0' in (scratch / "report.json").read_text()


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:  # argparse
        err = capsys.readouterr().err
        assert "usage:" not in err, (argv, err)
        return int(exit_.code or 0)
    finally:
        sys.stdout.flush()


def test_the_reference_names_every_public_name() -> None:
    text = DOC.read_text("utf-8")
    missing = [name for name in api.__all__ if f"`{name}`" not in text]
    assert missing == []


def test_the_example_flows_are_at_most_40_lines_on_the_public_api() -> None:
    examples = sorted((DOC.parents[1] / "examples" / "flows").glob("*.py"))
    assert len(examples) == 4
    for path in examples:
        text = path.read_text("utf-8")
        assert len(text.splitlines()) <= 40, path.name
        imports = re.findall(r"^from (gtvision\S*) import", text, re.M)
        assert set(imports) <= {"gtvision.flows.api", "gtvision.events"}, (path.name, imports)
