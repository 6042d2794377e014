"""The API side of the camera URL guard; rules and reasons in :mod:`gtvision.sources.streamurl`.

A stream URL is checked when a camera is created or changed (here: syntax, then the address of
the host, resolved without blocking the event loop) and again each time a reader connects
(:func:`gtvision.sources.streamurl.pin`, in the live relay and the flow reader).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence

from gtvision.logs import redact as mask_credentials
from gtvision.sources.streamurl import IpAddr, UnsafeUrl, checked, normalise, resolved, split

__all__ = ["UnsafeUrl", "check_stream_url", "mask_credentials", "normalise"]
RESOLVE_TIMEOUT_S = 5.0


async def check_stream_url(url: str, allow: Sequence[str]) -> str:
    """Validate ``url`` fully, resolving its host name; return the address it would open."""
    parts = split(url)
    try:
        addrs: list[IpAddr] = [ipaddress.ip_address(parts.host)]
    except ValueError:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(parts.host, parts.connect_port, type=socket.SOCK_STREAM),
                timeout=RESOLVE_TIMEOUT_S,
            )
        except (OSError, TimeoutError, UnicodeError) as err:
            why = "timed out" if isinstance(err, TimeoutError) else type(err).__name__
            msg = f"stream URL host {parts.host!r} does not resolve ({why})"
            raise UnsafeUrl(msg) from None
        addrs = resolved(infos)
    return checked(parts, addrs, allow)
