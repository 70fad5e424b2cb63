"""Which webhook targets may be reached: URL rules and address checks (SSRF protection).

A webhook URL is typed by a user, and the worker that POSTs to it sits inside
the host's network. So a URL must be ``http``/``https`` without credentials,
and every address its host resolves to must be public: loopback, private,
link-local, shared (CGNAT), multicast, reserved, unspecified and cloud
metadata addresses are refused, unless ``ASYNC_REPORTS["WEBHOOK_ALLOWED_NETWORKS"]``
lists a network containing them (metadata addresses are refused even then).
The URL's port must be one of ``WEBHOOK_ALLOWED_PORTS`` (80 and 443 by
default; None allows any), so a webhook cannot probe other services (SSH,
databases, admin consoles) on public hosts.

The check runs when a URL is saved (:func:`validate_webhook_url`) and again at
send time on the addresses the request then connects to
(:func:`resolve_target`), so a DNS answer that changes in between (DNS
rebinding) cannot redirect a webhook inside the network.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..conf import report_settings
from ..exceptions import AsyncReportsError, ReportConfigurationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 500  # the length of the webhook_url columns
ALLOWED_SCHEMES = ("http", "https")

# Instance metadata services (AWS, GCP, Azure, OpenStack, Oracle... all use the
# first; AWS's IPv6 endpoint is the second). Refused whatever the settings say.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
# IPv6 prefixes that embed an IPv4 address a gateway may forward to (NAT64).
_NAT64_PREFIXES = (
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("64:ff9b:1::/48"),
)


# Networks with no public address in them (IANA special-purpose registries,
# multicast and reserved space), for includes_public_addresses().
_NON_PUBLIC_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "::ffff:0:0/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)


class WebhookURLRefused(AsyncReportsError, ValueError):
    """A webhook URL (or the address it resolves to) may not be reached.

    The message says why, in words fit for an API field error.
    """


class WebhookHostUnresolved(WebhookURLRefused):
    """The webhook URL's host name could not be resolved (possibly a transient DNS error)."""


@dataclass(frozen=True)
class WebhookTarget:
    """A parsed webhook URL: what to connect to and what to ask for."""

    url: str
    scheme: str
    host: str  # without brackets for IPv6 literals, as resolved
    port: int
    path: str  # path and query, never empty


def allowed_networks() -> list[IPNetwork]:
    """``WEBHOOK_ALLOWED_NETWORKS`` parsed; a bad entry is a configuration error."""
    networks: list[IPNetwork] = []
    for entry in report_settings.WEBHOOK_ALLOWED_NETWORKS or ():
        try:
            networks.append(ipaddress.ip_network(str(entry), strict=False))
        except ValueError as exc:
            raise ReportConfigurationError(
                f'ASYNC_REPORTS["WEBHOOK_ALLOWED_NETWORKS"] has an invalid network {entry!r}: {exc}'
            ) from exc
    return networks


def includes_public_addresses(network: IPNetwork) -> bool:
    """Whether ``network`` holds a public address, i.e. is not inside non-public space.

    For the system check of ``WEBHOOK_ALLOWED_NETWORKS``: public addresses are
    always allowed, so listing one there is a mistake, and ``0.0.0.0/0`` would
    open every private address.
    """
    remaining: list[IPNetwork] = [network]
    for excluded in _NON_PUBLIC_NETWORKS:
        if excluded.version != network.version:
            continue
        kept: list[IPNetwork] = []
        for part in remaining:
            if part.subnet_of(excluded):  # type: ignore[arg-type]
                continue
            if excluded.subnet_of(part):  # type: ignore[arg-type]
                kept.extend(part.address_exclude(excluded))  # type: ignore[arg-type]
            else:
                kept.append(part)
        remaining = kept
        if not remaining:
            return False
    return bool(remaining)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64, Teredo), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    for prefix in _NAT64_PREFIXES:
        if ip in prefix:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(ip: IPAddress) -> bool:
    """True for a globally routable unicast address that is no metadata endpoint."""
    if ip in METADATA_ADDRESSES:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None and not is_public_address(embedded):
            return False
    # is_global is False for loopback, private, link-local, shared (100.64/10),
    # documentation, reserved and unspecified addresses; multicast needs its own test.
    return (
        ip.is_global
        and not ip.is_multicast
        and not ip.is_loopback
        and not ip.is_link_local
        and not ip.is_private
        and not ip.is_reserved
        and not ip.is_unspecified
    )


def check_address(ip: IPAddress, networks: list[IPNetwork] | None = None) -> None:
    """Raise :class:`WebhookURLRefused` unless ``ip`` may be reached."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        raise WebhookURLRefused(f"The address {ip} is a cloud metadata endpoint.")
    if is_public_address(ip):
        return
    if networks is None:
        networks = allowed_networks()
    if any(ip.version == net.version and ip in net for net in networks):
        return
    raise WebhookURLRefused(
        f"The address {ip} is not public (loopback, private, link-local, multicast or "
        "reserved); webhooks may only reach public addresses."
    )


def check_port(port: int) -> None:
    """Raise :class:`WebhookURLRefused` unless ``WEBHOOK_ALLOWED_PORTS`` lists ``port``."""
    allowed = report_settings.WEBHOOK_ALLOWED_PORTS
    if allowed is None or port in allowed:
        return
    listed = ", ".join(str(p) for p in allowed) or "none"
    raise WebhookURLRefused(
        f"Webhook URLs may only use the port(s) {listed}; this one uses port {port}."
    )


def parse_webhook_url(url: str) -> WebhookTarget:
    """Check the URL's form (scheme, credentials, host, allowed port, length) and split it."""
    if not isinstance(url, str) or not url.strip():
        raise WebhookURLRefused("Enter a webhook URL.")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise WebhookURLRefused(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise WebhookURLRefused("The URL contains whitespace or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookURLRefused(f"The URL is not valid: {exc}.") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise WebhookURLRefused("Only http and https webhook URLs are allowed.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise WebhookURLRefused("Webhook URLs may not contain credentials.")
    host = parts.hostname or ""
    if not host:
        raise WebhookURLRefused("The URL has no host.")
    if port is None:
        port = 443 if scheme == "https" else 80
    if port == 0:
        raise WebhookURLRefused("The URL's port is not valid.")
    check_port(port)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return WebhookTarget(url=url, scheme=scheme, host=host, port=port, path=path)


def resolve_target(target: WebhookTarget) -> list[tuple[int, str]]:
    """Every address the target's host resolves to, as ``(family, address)``, all checked.

    One address that may not be reached refuses the whole URL: which of the
    answers a connection would use is not ours to choose safely.
    """
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookHostUnresolved(f"The host {target.host!r} could not be resolved.") from exc
    networks = allowed_networks()
    addresses: list[tuple[int, str]] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        check_address(ipaddress.ip_address(address), networks)
        if (family, address) not in addresses:
            addresses.append((family, address))
    if not addresses:
        raise WebhookHostUnresolved(f"The host {target.host!r} has no address.")
    return addresses


def validate_webhook_url(url: str, *, resolve: bool = True) -> str:
    """Return the (stripped) URL if webhooks may be POSTed to it, else raise ``ValueError``.

    For the API and the admin, at create time: the message of the raised
    :class:`WebhookURLRefused` (a ``ValueError``) is meant for the user. With
    ``resolve`` (the default) the host name is resolved and every address
    checked; the same check runs again at each send.
    """
    target = parse_webhook_url(url)
    try:
        literal: IPAddress | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        check_address(literal)
    elif resolve:
        resolve_target(target)
    return target.url
