"""What a flow builder receives, and the registry of flows.

``gtvision replay`` and ``gtvision run`` build a :class:`FlowContext` (the frame source, the event
sink, settings, per-camera motion settings) and hand it to a builder::

    def build(ctx: FlowContext) -> Dataflow: ...

Builders must not care whether the source is a file or live cameras: ``ctx.replay`` only says
which clock windowed steps should use (event time only for replays).
"""

from __future__ import annotations

import importlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource
from bytewax.outputs import Sink
from bytewax.recovery import RecoveryConfig, init_db_dir
from pydantic import BaseModel

from gtvision.cluster import Cluster
from gtvision.config import Settings
from gtvision.events import EventBase
from gtvision.operators.geometry import Line, Zone
from gtvision.operators.motion import GateStats, MotionSettings
from gtvision.sources.decode import SourceItem

P = TypeVar("P", bound=BaseModel)


def _default_motion(camera_id: int) -> MotionSettings:
    return MotionSettings()


@dataclass
class FlowContext:
    """Everything a flow builder needs: where frames come from and where events go."""

    source: FixedPartitionedSource[SourceItem, Any]
    sink: Sink[EventBase]
    settings: Settings
    replay: bool = False
    name: str = "gtvision"
    motion_settings: Callable[[int], MotionSettings] = _default_motion
    gate_stats: GateStats = field(default_factory=GateStats)
    incident_gap: timedelta = timedelta(seconds=2)
    params: BaseModel | None = None
    """The flow's parameters (``--param``/``--params``), an instance of its declared model."""
    _tzs: Any = field(default=None, repr=False)
    _shapes: Any = field(default=None, repr=False)

    def params_of(self, model: type[P]) -> P:
        """``params`` as ``model`` (its defaults when none were given)."""
        if self.params is None:
            return model()
        if not isinstance(self.params, model):
            msg = f"the flow's parameters are {type(self.params).__name__}, not {model.__name__}"
            raise TypeError(msg)
        return self.params

    def tz(self, city_id: int) -> ZoneInfo:
        """The time zone of ``city_id`` (``cities.timezone``, else ``GTV_TIMEZONE``)."""
        if self._tzs is None:
            from gtvision.flows.tables import CityTimeZones

            self._tzs = CityTimeZones(self.settings)
        zone: ZoneInfo = self._tzs(city_id)
        return zone

    def zones(self, camera_id: int) -> tuple[Zone | Line, ...]:
        """Zones and lines of ``camera_id`` (``cameras.zones``; none for unknown cameras)."""
        if self._shapes is None:
            from gtvision.flows.tables import CameraZones

            self._shapes = CameraZones(self.settings)
        shapes: tuple[Zone | Line, ...] = self._shapes(camera_id)
        return shapes


FlowBuilder = Callable[[FlowContext], Dataflow]
BUILTIN_FLOWS: dict[str, str] = {
    "motion": "gtvision.flows.motion:build",
    "lpr": "gtvision.flows.lpr:build",
}


class FlowNotFoundError(LookupError):
    """The flow name or ``MODULE:ATTR`` does not resolve to a builder."""


def load_flow(name: str) -> FlowBuilder:
    """The builder named ``name``: a built-in (``motion``, ``lpr``) or ``MODULE:ATTR``."""
    target = BUILTIN_FLOWS.get(name, name)
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        known = ", ".join(sorted(BUILTIN_FLOWS))
        msg = f"unknown flow {name!r}: expected one of {known} or MODULE:ATTR"
        raise FlowNotFoundError(msg)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        msg = f"cannot import flow module {module_name!r} (from {name!r}): {err}"
        raise FlowNotFoundError(msg) from err
    builder = getattr(module, attr, None)
    if not callable(builder):
        msg = f"flow {name!r}: {module_name} has no callable {attr!r}"
        raise FlowNotFoundError(msg)
    return builder  # type: ignore[no-any-return]


def recovery_config(
    directory: Path | None,
    backup: timedelta | None = None,
    *,
    process_id: int = 0,
    processes: int = 1,
) -> RecoveryConfig | None:
    """Bytewax recovery in ``directory``; ``None`` when no directory is given (no recovery).

    A new or empty directory gets this process's recovery partition: ``part-<process_id>`` of
    ``processes`` (one process: ``part-0`` of 1). Each process of a cluster keeps its own
    partition in its own directory (on its own host); Bytewax resumes once the processes
    together hold all of them. A directory already holding partitions is used as it is.
    """
    if directory is None:
        return None
    if not 0 <= process_id < processes:
        msg = f"process_id must be 0..{processes - 1}, got {process_id}"
        raise ValueError(msg)
    directory.mkdir(parents=True, exist_ok=True)
    if not any(directory.glob("part-*.sqlite3")):
        with tempfile.TemporaryDirectory(dir=directory, prefix=".init-") as tmp:
            init_db_dir(Path(tmp), processes)
            mine = f"part-{process_id}.sqlite3"
            os.replace(Path(tmp) / mine, directory / mine)
    return RecoveryConfig(str(directory), backup)


def run_dataflow(
    builder: FlowBuilder,
    ctx: FlowContext,
    cluster: Cluster,
    *,
    snapshot_s: float,
    recovery: RecoveryConfig | None,
    verbose: bool = False,
) -> str | None:
    """Build the flow and run it as this process of ``cluster`` (``run`` and ``replay``).

    ``None`` when it completed, else what to print (:func:`gtvision.flows.errors.flow_error`:
    the user's exception first, from building the flow too). Bytewax's Rust panic reports are
    kept off stderr unless ``verbose``.
    """
    from bytewax.run import cli_main

    from gtvision.flows.errors import QuietRustPanics, flow_error

    try:
        with QuietRustPanics(verbose):
            cli_main(
                builder(ctx),
                **cluster.bytewax_args(),
                epoch_interval=timedelta(seconds=snapshot_s),
                recovery_config=recovery,
            )
    except Exception as err:  # Bytewax wraps the step's error: report the user's exception
        return flow_error(err, verbose=verbose)
    return None
