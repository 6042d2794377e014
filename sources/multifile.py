"""Several recordings replayed together, one partition per camera (``gtvision replay A B C``).

:class:`FileSources` puts several :class:`~gtvision.sources.file.FileSource` values behind one
Bytewax source: each file is its own partition (``file-<camera id>``), so with several workers
the cameras decode in parallel, each partition's recovery snapshot is its own file position and
motion state, and keyed steps see the cameras interleaved in event time as a live run would.

What to replay comes from paths (files, or directories whose video files are taken in name
order) or from a **manifest** (TOML or CSV) naming, per camera, the file or ``s3://`` key and the
time of its first frame::

    # replay.toml
    [[camera]]
    camera = "gate-7"                 # a configured camera's name, or its numeric id
    file = "gate7-0800.mp4"           # relative to the manifest, or s3://bucket/key
    start = "2026-05-01T08:00:00Z"    # capture time of the first frame

    # replay.csv: camera,file,start[,city_id]

**Anchoring** (how replayed times match live ones): a frame's time is ``start + (pts − first
pts)``. A live camera's frames are ``camera.online.ts + (pts − first pts)`` of the connection
(``camera.online`` carries the capture time of the connection's first frame), and a recording
segment starts at a keyframe whose capture time is its ``started_at``. So a recording replayed
with ``start`` = its ``started_at`` (or a stream's file replayed with the ``camera.online`` time
of the connection that read it from its first frame) gives the live run's event times and ids.
Without ``start``: ``--start``, else the file's ``creation_time``, else 1970-01-01T00:00:00Z.
"""

from __future__ import annotations

import csv
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from gtvision.sources.decode import AnalyzerFactory, SourceItem
from gtvision.sources.file import FileResume, FileSource

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".avi", ".ts", ".m4v", ".webm"})


class ManifestError(ValueError):
    """A replay manifest or path list that cannot be replayed (says which entry and why)."""


class ReplayEntry(BaseModel):
    """One camera of a replay: which camera, which file, when its first frame was captured."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    camera: str | int = Field(description="configured camera name, or a numeric camera id")
    file: str = Field(min_length=1, description="video path or s3://bucket/key")
    start: AwareDatetime | None = None
    city_id: int | None = Field(default=None, ge=0)


def video_files(paths: Sequence[str]) -> list[str]:
    """``paths`` with directories replaced by their video files (sorted by name)."""
    out: list[str] = []
    for raw in paths:
        path = Path(raw)
        if raw.startswith("s3://") or not path.is_dir():
            out.append(raw)
            continue
        found = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        if not found:
            kinds = ", ".join(sorted(VIDEO_SUFFIXES))
            msg = f"directory {raw!r} holds no video file ({kinds})"
            raise ManifestError(msg)
        out.extend(found)
    return out


def _rows(path: Path) -> list[dict[str, Any]]:
    text = path.read_text("utf-8")
    if path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            msg = f"manifest {str(path)!r} is not valid TOML: {err}"
            raise ManifestError(msg) from None
        rows = data.get("camera")
        if not isinstance(rows, list) or not rows:
            msg = f"manifest {str(path)!r} has no [[camera]] tables"
            raise ManifestError(msg)
        return [dict(r) for r in rows]
    reader = csv.DictReader(line for line in text.splitlines() if line.strip())
    rows = [{k.strip(): (v or "").strip() for k, v in r.items() if k} for r in reader]
    for row in rows:
        for key in ("start", "city_id"):
            if row.get(key) == "":
                row.pop(key)
    if not rows:
        msg = f"manifest {str(path)!r} has no rows (expected a header camera,file,start)"
        raise ManifestError(msg)
    return rows


def load_manifest(path: Path) -> list[ReplayEntry]:
    """The entries of a TOML (``[[camera]]``) or CSV (``camera,file,start``) manifest."""
    entries = []
    for i, row in enumerate(_rows(path), start=1):
        camera = row.get("camera")
        if isinstance(camera, str) and camera.isdigit():
            row["camera"] = int(camera)
        try:
            entry = ReplayEntry.model_validate(row)
        except ValidationError as err:
            msg = f"manifest {str(path)!r}, camera entry {i} ({row!r}): {err}"
            raise ManifestError(msg) from None
        if not entry.file.startswith("s3://") and not Path(entry.file).is_absolute():
            entry = entry.model_copy(update={"file": str(path.parent / entry.file)})
        entries.append(entry)
    _unique([str(e.camera) for e in entries], str(path))
    return entries


def _unique(cameras: Sequence[str], where: str) -> None:
    seen: set[str] = set()
    for cam in cameras:
        if cam in seen:
            msg = f"{where}: camera {cam!r} appears twice (one file per camera and replay)"
            raise ManifestError(msg)
        seen.add(cam)


class FileSources(FixedPartitionedSource[SourceItem, FileResume]):
    """Several files, one partition per camera (``file-<camera id>``)."""

    def __init__(self, sources: Sequence[FileSource]) -> None:
        if not sources:
            msg = "FileSources needs at least one file"
            raise ValueError(msg)
        self.sources = {src.list_parts()[0]: src for src in sources}
        if len(self.sources) != len(sources):
            ids = sorted(src.camera_id for src in sources)
            msg = f"two files replay as the same camera id (camera ids {ids})"
            raise ValueError(msg)

    def attach_analyzer(self, factory: AnalyzerFactory) -> None:
        """Run ``factory()``'s analyzer in every partition."""
        for src in self.sources.values():
            src.attach_analyzer(factory)

    def list_parts(self) -> list[str]:
        """One partition per file."""
        return list(self.sources)

    def build_part(
        self, step_id: str, for_part: str, resume_state: FileResume | int | None
    ) -> StatefulSourcePartition[SourceItem, FileResume]:
        """The partition of one file."""
        return self.sources[for_part].build_part(step_id, for_part, resume_state)
