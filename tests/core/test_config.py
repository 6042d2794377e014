"""Configuration: one clear line for a bad value, secrets masked everywhere."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gtvision.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _gtvision(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GTV_")}
    return subprocess.run(
        [sys.executable, "-m", "gtvision.cli", *args],
        env={**base, **env},
        cwd=tmp_path,  # no stray .env from the repo
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("GTV_HTTP_PORT", "eighty", "valid integer"),
        ("GTV_HTTP_PORT", "70000", "less than or equal to 65535"),
        ("GTV_DEVICE", "tpu", "'cpu' or 'cuda'"),
        ("GTV_CAMERA_ALLOW_CIDRS", "10.0.0.0/8,office", "expected CIDR networks"),
        ("GTV_REDIS_URL", "http://127.0.0.1:6379", "expected a redis:// URL"),
        ("GTV_ANALYSIS_FPS", "-1", "greater than 0"),
        ("GTV_S3_SECURE", "maybe", "valid boolean"),
        # URL settings: no blanks or control characters, strict camera URLs (issue 13)
        ("GTV_PUBLIC_BASE_URL", "http://gtv.example/\nX-Injected: 1", "control characters"),
        ("GTV_RTSP_URLS", "rtsp://127.1/x", "not an IPv4 address written as a.b.c.d"),
    ],
)
def test_invalid_value_is_one_line_exit_2(
    tmp_path: Path, var: str, value: str, expected: str
) -> None:
    proc = _gtvision(tmp_path, "config", "show", **{var: value})
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    (line,) = lines
    assert "Traceback" not in line
    assert f"{var}={value!r}" in line, line
    assert expected in line, line


def test_url_settings_refuse_blanks_control_characters_and_other_schemes() -> None:
    """In-process (the subprocess cases above cost a CLI start each)."""
    from pydantic import ValidationError

    from gtvision.config import Settings

    bad: list[dict[str, Any]] = [
        {"s3_endpoint": "minio:9000 "},
        {"mediamtx_public_url": "javascript:alert(1)"},
        {"mediamtx_api": "http://127.0.0.1:9997/\r\nX: 1"},
        {"webrtc_ice_servers": "stun:stun.example:3478,turn:\tx"},
        {"database_url": "postgresql://h/db\x00"},
    ]
    for values in bad:
        with pytest.raises(ValidationError):
            Settings.model_validate(values)
    ok = Settings.model_validate({"rtsp_urls": "RTSP://Cam.Example/x"})
    assert ok.rtsp_urls == ["rtsp://cam.example/x"]


def test_secret_in_invalid_url_is_masked(tmp_path: Path) -> None:
    proc = _gtvision(
        tmp_path, "config", "show", GTV_DATABASE_URL="mysql://app:hunter2@db.local/gtv"
    )
    assert proc.returncode == 2
    assert "hunter2" not in proc.stderr
    assert "GTV_DATABASE_URL='mysql://app:***@db.local/gtv'" in proc.stderr
    assert "expected a postgresql:// URL" in proc.stderr


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    secrets = {
        "GTV_JWT_SECRET": "jwt-s3cret-value",
        "GTV_S3_SECRET_KEY": "s3-s3cret-value",
        "GTV_BOOTSTRAP_PASSWORD": "boot-s3cret-value",
        "GTV_DATABASE_URL": "postgresql://gtv:pg-s3cret-value@127.0.0.1:5432/gtv",
        "GTV_AMQP_URL": "amqp://gtv:amqp-s3cret-value@127.0.0.1:5672/city",
        "GTV_REDIS_URL": "redis://:redis-s3cret-value@127.0.0.1:6379/0",
    }
    proc = _gtvision(tmp_path, "config", "show", GTV_HTTP_PORT="9090", **secrets)
    assert proc.returncode == 0, proc.stderr
    assert "s3cret" not in proc.stdout
    shown = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        shown[key] = value.strip()
    assert shown["GTV_JWT_SECRET"] == "***"
    assert shown["GTV_DATABASE_URL"] == "postgresql://gtv:***@127.0.0.1:5432/gtv"
    assert shown["GTV_AMQP_URL"] == "amqp://gtv:***@127.0.0.1:5672/city"
    assert shown["GTV_HTTP_PORT"] == "9090"
    assert set(shown) == {f"GTV_{name.upper()}" for name in Settings.model_fields}


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\|\s*`(GTV_[A-Z0-9_]+)`\s*\|", readme, flags=re.M))
    expected = {f"GTV_{name.upper()}" for name in Settings.model_fields}
    assert expected - documented == set(), "add these to the README configuration table"
    assert documented - expected == set(), "the README documents settings that do not exist"
