"""Camera stream URLs: scheme check, credential masking and the SSRF guard.

Refused always: loopback, link-local (incl. 169.254.169.254 cloud metadata), unspecified,
multicast, reserved and the other well-known metadata addresses. Private and other addresses
are accepted only inside ``camera_allow_cidrs``; public addresses outside it are refused too.
Hostnames are resolved and every address they resolve to must pass.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

IpAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
_METADATA = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("169.254.170.2"),
        ipaddress.ip_address("100.100.100.200"),
        ipaddress.ip_address("fd00:ec2::254"),
    }
)


class UnsafeUrl(ValueError):
    """A stream URL that must not be stored."""


def mask_credentials(url: str) -> str:
    """``rtsp://user:***@host/path`` (the password never leaves the database)."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    netloc = f"{user}:***@{host}" if parts.password is not None else f"{user}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_address(addr: IpAddr, allow: Sequence[str]) -> None:
    """Raise :class:`UnsafeUrl` unless ``addr`` may be contacted by the camera workers."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr in _METADATA:
        msg = f"address {addr} is a cloud metadata endpoint"
        raise UnsafeUrl(msg)
    for flag, what in (
        (addr.is_loopback, "loopback"),
        (addr.is_link_local, "link-local"),
        (addr.is_unspecified, "unspecified"),
        (addr.is_multicast, "multicast"),
        (addr.is_reserved, "reserved"),
    ):
        if flag:
            msg = f"address {addr} is {what}"
            raise UnsafeUrl(msg)
    if not any(addr in ipaddress.ip_network(cidr, strict=False) for cidr in allow):
        msg = f"address {addr} is outside GTV_CAMERA_ALLOW_CIDRS ({','.join(allow)})"
        raise UnsafeUrl(msg)


def parse_stream_url(url: str) -> tuple[str, int]:
    """Check scheme and host syntax; return ``(host, port)``."""
    try:
        parts = urlsplit(url)
        port = parts.port or (322 if parts.scheme == "rtsps" else 554)
    except ValueError as err:
        msg = f"stream URL {mask_credentials(url)!r} is malformed: {err}"
        raise UnsafeUrl(msg) from None
    if parts.scheme not in {"rtsp", "rtsps"}:
        msg = f"stream URL must start with rtsp:// or rtsps://, got scheme {parts.scheme!r}"
        raise UnsafeUrl(msg)
    if not parts.hostname:
        msg = f"stream URL {mask_credentials(url)!r} has no host"
        raise UnsafeUrl(msg)
    return parts.hostname, port


async def check_stream_url(url: str, allow: Sequence[str]) -> None:
    """Validate ``url`` fully, resolving its hostname; raise :class:`UnsafeUrl`."""
    host, port = parse_stream_url(url)
    try:
        addrs: list[IpAddr] = [ipaddress.ip_address(host)]
    except ValueError:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=5
            )
        except (OSError, TimeoutError, UnicodeError) as err:
            msg = f"stream URL host {host!r} does not resolve: {err}"
            raise UnsafeUrl(msg) from None
        addrs = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for addr in addrs:
        check_address(addr, allow)
