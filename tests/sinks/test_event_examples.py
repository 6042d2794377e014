"""docs/events.md is generated from the models and every example parses back."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

from gtvision.events import Event, parse_event
from gtvision.sinks.event_examples import examples, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def _all_types() -> set[str]:
    union = typing.get_args(Event)[0]
    found: set[str] = set()
    for model in typing.get_args(union):
        found.update(typing.get_args(model.model_fields["type"].annotation))
    return found


def test_doc_is_current() -> None:
    assert DOC.read_text() == render(), (
        "docs/events.md is stale: python -m gtvision.sinks.event_examples > docs/events.md"
    )


def test_every_example_parses_and_every_type_is_documented() -> None:
    text = DOC.read_text()
    blocks = re.findall(r"```json\n(.*?)\n```", text, flags=re.S)
    parsed = [parse_event(block) for block in blocks]
    assert [e.id for e in parsed] == [e.id for e in examples()]
    for event, block in zip(parsed, blocks, strict=True):
        assert json.loads(event.to_json()) | {"crop_jpeg": None} == json.loads(block) | {
            "crop_jpeg": None
        }
        assert "crop_jpeg" not in json.loads(block)
    assert {e.type for e in parsed} == _all_types()
