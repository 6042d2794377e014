"""pgBackRest with the shipped configuration on a private cluster (restore drill and bench).

The shipped ``deploy/pgbackrest/pgbackrest.conf`` and ``deploy/postgres/backup.conf`` with what
a test machine must change: a posix repository instead of S3 (no encryption key), the cluster's
own paths and port, and ``archive_timeout`` as the caller asks.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY

ARCHIVE_TIMEOUT_S = 10


def as_postgres(*args: str, timeout: float = 120) -> str:
    """Run a command as user postgres; its output (fails the test with stderr otherwise)."""
    proc = subprocess.run(
        ["runuser", "-u", "postgres", "--", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(args[:3])} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def drill_config(base: Path, port: int) -> Path:
    """The shipped pgbackrest.conf with a posix repository and this cluster's paths."""
    conf = configparser.ConfigParser(interpolation=None)
    conf.optionxform = str  # type: ignore[assignment,method-assign]
    conf.read(DEPLOY / "pgbackrest" / "pgbackrest.conf")
    glob = conf["global"]
    assert glob["repo1-retention-full"] == "7"
    for key in [k for k in glob if k.startswith("repo1-s3") or k == "repo1-cipher-type"]:
        del glob[key]
    glob.update(
        {
            "repo1-type": "posix",
            "repo1-path": str(base / "repo"),
            "spool-path": str(base / "spool"),
            "log-path": str(base / "log"),
            "lock-path": str(base / "lock"),
            "log-level-file": "off",
        }
    )
    (stanza,) = [s for s in conf.sections() if s not in ("global", "global:archive-push")]
    conf[stanza].update(
        {"pg1-path": str(base / "data"), "pg1-socket-path": str(base), "pg1-port": str(port)}
    )
    conf[stanza]["pg1-user"] = "postgres"
    path = base / "pgbackrest.conf"
    with path.open("w") as fh:
        conf.write(fh)
    for sub in ("repo", "spool", "log", "lock"):
        (base / sub).mkdir()
        shutil.chown(base / sub, "postgres", "postgres")
    shutil.chown(path, "postgres", "postgres")
    return path


def archive_settings(config: Path, stanza: str, timeout_s: int = ARCHIVE_TIMEOUT_S) -> str:
    """The shipped backup.conf with this config path and ``archive_timeout``."""
    text = (DEPLOY / "postgres" / "backup.conf").read_text()
    assert re.search(r"^archive_timeout = 60$", text, re.M)
    text = text.replace("'pgbackrest ", f"'pgbackrest --config={config} ", 1)
    timeout = f"archive_timeout = {timeout_s}"
    text = re.sub(r"^archive_timeout = 60$", timeout, text, count=1, flags=re.M)
    assert f"--stanza={stanza} archive-push" in text
    return text
