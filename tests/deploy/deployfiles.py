"""Checks shared by the compose and Kubernetes file tests (no Docker/Kubernetes here)."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gtvision import __version__
from gtvision.cli import build_parser
from gtvision.config import ENV_PREFIX, Settings

SETTINGS = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
_SHELL_VAR = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_]\w*")


def pinned(image: str) -> bool:
    """A reproducible image reference: a digest, or a tag with a version (not latest/major)."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag or tag in {"", "latest"}:
        return False
    return bool(re.fullmatch(r"v?\d+\.\d+(\.\d+)?([-.][\w.-]+)?|RELEASE\.[\w.-]+", tag))


def gtvision_args(command: list[str]) -> list[str] | None:
    """The arguments after ``gtvision`` of a container command (``sh -c "exec gtvision …"`` too)."""
    if command[:2] == ["sh", "-c"]:
        words = shlex.split(_SHELL_VAR.sub("0", command[2]))
        if words and words[0] == "exec":
            words = words[1:]
        command = words
    if command and command[0] == "gtvision":
        return command[1:]
    return None


def command_problem(args: list[str]) -> str | None:
    """Why ``gtvision ARGS`` would not parse (None when it is a real command line)."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parsed = build_parser().parse_args(args)
    except SystemExit:
        return f"gtvision {' '.join(args)}: {err.getvalue().strip().splitlines()[-1:]}"
    if not hasattr(parsed, "func"):
        return f"gtvision {' '.join(args)}: no command"
    return None


def haproxy_knobs() -> set[str]:
    """The ``GTV_HAPROXY_*`` variables deploy/haproxy.cfg documents in its header (not settings
    of gtvision: HAProxy expands them)."""
    text = (Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg").read_text()
    return set(re.findall(r"^#\s+(GTV_HAPROXY_\w+)", text, re.M))


def env_problems(names: list[str]) -> list[str]:
    """``GTV_*`` names that are not settings."""
    return [n for n in names if n.startswith(ENV_PREFIX) and n not in SETTINGS]


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping inside a parsed YAML document."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


APP_VERSION = __version__
