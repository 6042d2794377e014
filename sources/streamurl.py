"""Camera stream URLs: one strict syntax, credential masking, and the address guard (SSRF).

**Syntax** (:func:`normalise`): ``rtsp://`` or ``rtsps://`` (any case; stored lower-case),
optional ``user:password@`` (an ``@`` inside them written ``%40``), a host, an optional port
1–65535, then path and query. Only the characters RFC 3986 allows, printable ASCII: control
characters, blanks, backslashes, quotes and non-ASCII are refused, not stripped, so the string
checked is the string stored and the string the reader sends. The host is a canonical IPv4
address (four decimal numbers), a bracketed IPv6 address without zone, or a DNS name whose last
label is not a number: the other spellings libc accepts for an address (``127.1``,
``2130706433``, ``0x7f.0.0.1``, ``0177.0.0.1``) are refused instead of being guessed.

**Addresses** (:func:`check_address`): refused always are link-local (cloud metadata lives
there), unspecified, multicast, reserved and the known metadata addresses; loopback only unless
``GTV_CAMERA_ALLOW_CIDRS`` lists a loopback network itself (MediaMTX on the same host:
``127.0.0.1/32``). Every other address must be inside ``GTV_CAMERA_ALLOW_CIDRS``. IPv6 forms
that carry an IPv4 address (IPv4-mapped, 6to4, NAT64 ``64:ff9b::/96``, Teredo) are checked as
that IPv4 address too.

**At connect time** (:func:`pin`): the host is resolved once, every address it resolves to is
checked, and the URL handed to the reader names the first address instead of the host. A name
that resolves differently later (DNS rebinding) or a row changed outside the API therefore
cannot reach an address the guard refuses. What is lost by connecting to the address: the RTSP
request line carries the address, not the name (servers that route by host name need the URL
written with the address they expect), and for ``rtsps`` the TLS server name (SNI) is not sent
(ffmpeg does not verify RTSP-over-TLS certificates by default, so verification is unchanged).
Not covered: an RTSP server inside the allowed networks that answers with a redirect; ffmpeg
follows it without asking.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from gtvision.logs import redact as mask_url

IpAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
SCHEMES = frozenset({"rtsp", "rtsps"})
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322}
_ALLOWED = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeUrl(ValueError):
    """A stream URL that must not be stored or opened (the message never holds a password)."""


@dataclass(frozen=True, slots=True)
class StreamUrl:
    """A normalised stream URL cut into its parts."""

    scheme: str
    userinfo: str | None
    host: str
    port: int | None
    rest: str

    @property
    def connect_port(self) -> int:
        """The port written, else the scheme's default."""
        return self.port or DEFAULT_PORTS[self.scheme]

    def text(self, host: str | None = None) -> str:
        """The URL, with ``host`` (an address) in place of the host when given."""
        name = self.host if host is None else host
        if ":" in name:
            name = f"[{name}]"
        auth = "" if self.userinfo is None else f"{self.userinfo}@"
        port = "" if self.port is None else f":{self.port}"
        return f"{self.scheme}://{auth}{name}{port}{self.rest}"


def _refuse(url: str, why: str) -> UnsafeUrl:
    return UnsafeUrl(f"stream URL {mask_url(url)!r} {why}")


def _host(url: str, hostport: str) -> tuple[str, str]:
    """``(host, port text)`` of the authority's host part."""
    if hostport.startswith("["):
        inner, close, port = hostport[1:].partition("]")
        if not close or (port and not port.startswith(":")):
            raise _refuse(url, "has a malformed [IPv6] host")
        try:
            if "%" in inner:
                raise ValueError(inner)
            addr = ipaddress.IPv6Address(inner)
        except ValueError:
            raise _refuse(url, "has an invalid IPv6 address (zones are not accepted)") from None
        return str(addr.ipv4_mapped or addr), port[1:]
    host, _, port = hostport.partition(":")
    host = host.lower()
    if not host:
        raise _refuse(url, "has no host")
    labels = host.split(".")
    if all(_NUMERIC_LABEL.fullmatch(p) for p in labels) or _NUMERIC_LABEL.fullmatch(labels[-1]):
        try:
            return str(ipaddress.IPv4Address(host)), port
        except ValueError:
            why = "has a numeric host that is not an IPv4 address written as a.b.c.d"
            raise _refuse(url, why) from None
    if len(host) > 253 or not all(_LABEL.fullmatch(p) for p in labels):
        raise _refuse(url, "has an invalid host name")
    return host, port


def split(url: str) -> StreamUrl:
    """Check ``url``'s syntax strictly (see the module docstring); raise :class:`UnsafeUrl`."""
    for i, char in enumerate(url):
        if not "\x21" <= char <= "\x7e":
            raise _refuse(url[:i], f"is followed by a control character, blank or non-ASCII at {i}")
    if not _ALLOWED.fullmatch(url) or _BAD_PERCENT.search(url):
        raise _refuse(url, "holds characters a URL may not hold (quote, backslash, bad %-escape)")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        msg = f"stream URL must start with rtsp:// or rtsps://, got {scheme[:20]!r}"
        raise UnsafeUrl(msg)
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, hostport = authority.rpartition("@")
    if "@" in userinfo:
        raise _refuse(url, "has '@' in its user name or password: write it as %40")
    host, port_text = _host(url, hostport)
    port = None
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise _refuse(url, "has a port outside 1-65535")
        port = int(port_text)
    return StreamUrl(scheme, userinfo if at else None, host, port, tail)


def normalise(url: str) -> str:
    """The one form of ``url`` that is stored, checked and opened (scheme and host lower-case)."""
    return split(url).text()


def _embedded(addr: IpAddr) -> list[IpAddr]:
    """``addr`` and any IPv4 address an IPv6 form carries (IPv4-mapped: that address only)."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return [addr.ipv4_mapped]
    out: list[IpAddr] = [addr]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.sixtofour is not None:
            out.append(addr.sixtofour)
        if addr.teredo is not None:
            out.extend(addr.teredo)
        if addr in _NAT64:
            out.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    return out


def _loopback_allowed(allow: Sequence[str]) -> bool:
    """Whether an allowed network lies inside loopback itself (not merely contains it)."""
    for cidr in allow:
        net = ipaddress.ip_network(cidr, strict=False)
        if net.network_address.is_loopback and net.broadcast_address.is_loopback:
            return True
    return False


def check_address(addr: IpAddr, allow: Sequence[str]) -> None:
    """Raise :class:`UnsafeUrl` unless ``addr`` may be contacted as a camera."""
    nets = [ipaddress.ip_network(c, strict=False) for c in allow]
    for one in _embedded(addr):
        if one in _METADATA:
            msg = f"address {addr} is a cloud metadata endpoint"
            raise UnsafeUrl(msg)
        for flag, what in (
            (one.is_link_local, "link-local"),
            (one.is_unspecified, "unspecified"),
            (one.is_multicast, "multicast"),
            (one.is_reserved and not one.is_loopback, "reserved"),
            (one.is_loopback and not _loopback_allowed(allow), "loopback"),
        ):
            if flag:
                msg = f"address {addr} is {what}"
                raise UnsafeUrl(msg)
        if not any(one in net for net in nets):
            msg = f"address {addr} is outside GTV_CAMERA_ALLOW_CIDRS ({','.join(allow)})"
            raise UnsafeUrl(msg)


def addresses(parts: StreamUrl) -> list[IpAddr]:
    """The addresses ``parts``' host stands for (resolved when it is a name; blocking)."""
    try:
        return [ipaddress.ip_address(parts.host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(parts.host, parts.connect_port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        msg = f"stream URL host {parts.host!r} does not resolve: {err}"
        raise UnsafeUrl(msg) from None
    return resolved(infos)


def resolved(infos: Sequence[tuple[object, ...]]) -> list[IpAddr]:
    """Addresses of ``getaddrinfo`` results (scope ids dropped), in order, once each."""
    out: list[IpAddr] = []
    for info in infos:
        sockaddr = info[4]
        assert isinstance(sockaddr, tuple)
        addr = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if addr not in out:
            out.append(addr)
    return out


def checked(parts: StreamUrl, addrs: Sequence[IpAddr], allow: Sequence[str]) -> str:
    """The URL to open: every address checked, the first one in place of the host."""
    if not addrs:
        msg = f"stream URL host {parts.host!r} has no address"
        raise UnsafeUrl(msg)
    for addr in addrs:
        check_address(addr, allow)
    return parts.text(str(addrs[0]))


def pin(url: str, allow: Sequence[str]) -> str:
    """Resolve and check ``url`` now; return it with the checked address as host (blocking).

    The URL returned is built from the parts that were checked, never from the raw text.
    """
    parts = split(url)
    return checked(parts, addresses(parts), allow)
