"""The client's address: forwarded headers are believed only from ``GTV_TRUSTED_PROXIES``.

A reverse proxy (HAProxy, nginx, a Kubernetes ingress) appends the address it received a
request from to ``X-Forwarded-For``; anything to the left of that came from the client and may
be invented. So the header is read from the right: addresses of trusted proxies are skipped and
the first address that is not a trusted proxy is the client. A peer that is not a trusted proxy
is the client itself, whatever headers it sends. ``X-Forwarded-Proto`` (``http``/``https``) is
taken from a trusted peer too. ``Forwarded`` (RFC 7239) and ``X-Real-IP`` are ignored: configure
the proxy to send ``X-Forwarded-For`` (HAProxy: ``option forwardfor``).

The server under the app must not rewrite the peer address itself: ``gtvision serve`` and
``gtvision demo`` run uvicorn with ``proxy_headers=False`` (uvicorn's default believes
``X-Forwarded-For`` from 127.0.0.1). Running the app under another server, switch its
forwarded-header handling off the same way.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

IpAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNet = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ip(text: str) -> IpAddr | None:
    """An address from a forwarded-header element (``1.2.3.4``, ``1.2.3.4:5``, ``[v6]:5``)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.partition(":")[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def networks(cidrs: Iterable[str]) -> tuple[IpNet, ...]:
    """``GTV_TRUSTED_PROXIES`` entries as networks (a bare address is a /32 or /128)."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())


class TrustedProxies:
    """Which peers may tell the client's address, and how to read what they tell."""

    def __init__(self, cidrs: Sequence[str]) -> None:
        self.nets = networks(cidrs)

    def __bool__(self) -> bool:
        return bool(self.nets)

    def trusts(self, addr: IpAddr | None) -> bool:
        """Whether ``addr`` is a configured proxy."""
        return addr is not None and any(addr in net for net in self.nets)

    def client(self, peer: str, forwarded_for: Sequence[bytes]) -> str:
        """The client address of a request from ``peer`` with these ``X-Forwarded-For`` lines.

        Read right to left, skipping trusted proxies; an element that is not an address stops
        the walk (the last trusted hop is then the client: nothing left of garbage is
        believed). Without trusted proxies, or from an untrusted peer, it is ``peer``.
        """
        here = parse_ip(peer)
        if not self.trusts(here) or not forwarded_for:
            return peer
        hops = ",".join(v.decode("latin-1") for v in forwarded_for).split(",")
        client = peer
        for hop in reversed(hops):
            addr = parse_ip(hop)
            if addr is None:
                break
            client = str(addr)
            if not self.trusts(addr):
                break
        return client


def limit_key(addr: str) -> str:
    """The rate-limit identity of a client address: IPv4 as is, IPv6 by its /64.

    One IPv6 subscriber usually holds a whole /64, so counting single IPv6 addresses would
    hand every client 2**64 fresh buckets.
    """
    ip = parse_ip(addr)
    if ip is None:
        return addr or "?"
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def server_options() -> dict[str, Any]:
    """Uvicorn options of every server running the app (``serve``, ``demo``, tests).

    ``proxy_headers=False``: uvicorn would otherwise believe ``X-Forwarded-For`` from
    127.0.0.1; the app reads forwarded headers itself, from ``GTV_TRUSTED_PROXIES`` only
    (:mod:`gtvision.web.clientip`). ``server_header=False``: no ``server: uvicorn`` banner.
    """
    return {"proxy_headers": False, "server_header": False}
