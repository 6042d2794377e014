"""Offline reasons of connect/read errors (``sources.decode.offline_reason``)."""

from __future__ import annotations

import errno

import av.error
import pytest

from gtvision.sources.decode import OPEN_TIMEOUT, offline_reason

READ_TIMEOUT = OPEN_TIMEOUT[1]


def _eio() -> OSError:
    return OSError(errno.EIO, "Input/output error", "rtsp://127.0.0.1:1/frozen")


@pytest.mark.parametrize(
    "err",
    [_eio(), av.error.EOFError(errno.EIO, "End of file"), RuntimeError("x")],
    ids=["EIO", "EOF", "other"],
)
def test_a_read_failing_after_the_read_timeout_without_packets_is_a_timeout(
    err: BaseException,
) -> None:
    """FFmpeg's RTSP demuxer turns the read-timeout interrupt into EIO or EOF, not ETIMEDOUT."""
    assert offline_reason(err, idle_s=READ_TIMEOUT)[0] == "timeout"
    assert offline_reason(err, idle_s=READ_TIMEOUT * 0.95)[0] == "timeout"


def test_a_read_failing_while_packets_flow_keeps_its_own_reason() -> None:
    assert offline_reason(_eio(), idle_s=0.2)[0] == "error"
    gone = av.error.EOFError(errno.EIO, "End of file")
    assert offline_reason(gone, idle_s=0.2)[0] == "server_gone"


def test_refused_and_auth_never_become_timeouts() -> None:
    refused = av.error.ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    assert offline_reason(refused, idle_s=60.0)[0] == "refused"
    auth = av.error.HTTPUnauthorizedError(errno.EPERM, "401")
    assert offline_reason(auth, idle_s=60.0)[0] == "auth"


def test_the_detail_names_the_error_and_is_one_bounded_line() -> None:
    reason, detail = offline_reason(_eio())
    assert reason == "error"
    assert detail.startswith("OSError: [Errno 5] Input/output error")
    assert len(offline_reason(RuntimeError("x" * 1000))[1]) <= 300
