"""Sending one notification: signed webhooks (Standard Webhooks) and Apprise URLs, the target address check, the
classification of what came back, and the retry schedule. No database: callers pass every value in.

Address check: a target's host is resolved once; if any address it resolves to is not public (private, loopback,
link-local, shared, reserved, multicast, unspecified, or such an IPv4 address carried in an IPv6 one: mapped,
6to4, NAT64) the target is refused, unless the caller allows private targets. A webhook then connects to the
address that was checked (with the original host name in the `Host` header and for TLS: SNI and certificate
check), so a DNS answer that changes between the check and the connection cannot redirect it. Apprise's own HTTP
client resolves names itself: for its plugins that take a host from the URL (json://, ntfy://, mailto:// with an
SMTP host...), the host is checked the same way just before sending, which leaves the window of that second
lookup open for Apprise targets. Neither follows a redirect.
"""

import contextlib
import ipaddress
import json
import random
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import apprise
import certifi
import urllib3
from standardwebhooks import Webhook

MAX_RESPONSE_BYTES = 4096
MAX_ERROR_CHARS = 300
USER_AGENT = "nija-alerts/1"


class Outcome:
    DELIVERED = "delivered"
    RETRY = "retry"
    REJECTED = "rejected"
    REFUSED = "refused"


@dataclass(frozen=True)
class SendResult:
    outcome: str
    status_code: int | None = None
    error: str = ""
    retry_after: float | None = None
    duration_ms: int = 0


class TargetRefused(Exception):
    """The target resolves to an address that is not public (the message names the host and address only)."""


# ---------------------------------------------------------------------------------------------- addresses
# IPv6 ranges that carry an IPv4 address in their last 32 bits, which a translator on the path reaches: NAT64's
# well-known prefix (RFC 6052), IPv4-compatible (deprecated) and IPv4-translated (SIIT) addresses. (IPv4-mapped
# and 6to4 addresses have their own properties.)
EMBEDDED_IPV4 = tuple(ipaddress.ip_network(net) for net in ("64:ff9b::/96", "::/96", "::ffff:0:0:0/96"))
# Never public, whatever they carry: NAT64's local-use prefix (RFC 8215) and the deprecated site-local range.
LOCAL_IPV6 = tuple(ipaddress.ip_network(net) for net in ("64:ff9b:1::/48", "fec0::/10"))


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address (for an IPv6 address that carries an IPv4 one: that one)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in LOCAL_IPV6):
            return False
        if ip.ipv4_mapped is not None or ip.sixtofour is not None:
            ip = ip.ipv4_mapped or ip.sixtofour
        elif any(ip in network for network in EMBEDDED_IPV4) and ip != ipaddress.IPv6Address("::"):
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.is_global and not ip.is_multicast


def resolve_target(host: str, port: int, *, allow_private: bool) -> str:
    """The address to connect to for `host`, after checking every address it resolves to.

    Raises TargetRefused for a non-public address (unless allowed) and OSError when the name does not resolve."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private:
        for address in addresses:
            if not is_public_address(address):
                raise TargetRefused(f"{host} resolves to {address}, which is not a public address")
    return addresses[0]


def literal_address_refused(host: str) -> bool:
    """A host that is, without any DNS lookup, a non-public address (an IP literal or `localhost`)."""
    if host.lower().rstrip(".") == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return not is_public_address(host)
    except ValueError:
        return False  # a name: checked when it is resolved, at send time


# ---------------------------------------------------------------------------------------------- webhooks
def sign(*, secret: str, message_id: str, timestamp: datetime, body: bytes) -> str:
    """`webhook-signature` per Standard Webhooks: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`."""
    return Webhook(secret).sign(msg_id=message_id, timestamp=timestamp, data=body.decode())


def message_body(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes sent and signed (stable: the same payload gives the same bytes on every attempt)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def webhook_post(
    *,
    url: str,
    secret: str,
    message_id: str,
    body: bytes,
    now: datetime,
    timeout: float,
    allow_private: bool,
) -> SendResult:
    """POST one signed message; never raises for a network or receiver failure (the result says what happened)."""
    started = time.perf_counter()
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    headers = {
        "Host": parts.netloc.rsplit("@", 1)[-1],
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": sign(secret=secret, message_id=message_id, timestamp=now, body=body),
    }
    try:
        address = resolve_target(host, port, allow_private=allow_private)
        status, response_headers = _post(parts.scheme, host, address, port, _path(parts), body, headers, timeout)
    except TargetRefused as exc:
        return SendResult(Outcome.REFUSED, error=str(exc), duration_ms=_since(started))
    except (OSError, urllib3.exceptions.HTTPError) as exc:
        return SendResult(Outcome.RETRY, error=_describe(exc), duration_ms=_since(started))
    return classify(status, response_headers, duration_ms=_since(started))


def _path(parts: Any) -> str:
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _post(
    scheme: str, host: str, address: str, port: int, path: str, body: bytes, headers: dict, timeout: float
) -> tuple[int, Mapping[str, str]]:
    """Connect to the checked `address`, never to a fresh lookup of `host`; no redirects, no urllib3 retries."""
    options: dict[str, Any] = {
        "timeout": urllib3.Timeout(connect=timeout, read=timeout),
        "retries": False,
        "maxsize": 1,
    }
    if scheme == "https":
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            address,
            port,
            server_hostname=host,
            assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            **options,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, port, **options)
    try:
        response = pool.urlopen(
            "POST", path, body=body, headers=headers, redirect=False, preload_content=False, assert_same_host=False
        )
        response.read(MAX_RESPONSE_BYTES)
        response.release_conn()
        return response.status, response.headers
    finally:
        pool.close()


def classify(status: int, headers: Mapping[str, str], *, duration_ms: int = 0) -> SendResult:
    """2xx delivered; 408, 429 and 5xx retried (429 and 503 honour Retry-After); anything else is rejected and
    not retried (a redirect is not followed: it would lead past the address check)."""
    if 200 <= status < 300:
        return SendResult(Outcome.DELIVERED, status_code=status, duration_ms=duration_ms)
    error = f"HTTP {status}"
    if status in (408, 429) or status >= 500:
        retry_after = retry_after_seconds(headers.get("Retry-After"))
        return SendResult(Outcome.RETRY, status, error, retry_after=retry_after, duration_ms=duration_ms)
    return SendResult(Outcome.REJECTED, status, error, duration_ms=duration_ms)


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """A `Retry-After` header in seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # delta-seconds: ASCII digits (isdigit alone takes "²")
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


# ---------------------------------------------------------------------------------------------- apprise
def apprise_plugin(url: str) -> Any:
    """The Apprise plugin for `url`, or None when Apprise does not understand it."""
    return apprise.Apprise.instantiate(url, suppress_exceptions=True)


def apprise_target_hint(url: str) -> str:
    """What may be shown of an Apprise URL: its scheme and service, never its credentials."""
    plugin = apprise_plugin(url)
    scheme = urlsplit(url).scheme
    return f"{scheme}:// ({plugin.service_name})" if plugin is not None else f"{scheme}://"


def apprise_hosts(plugin: Any) -> list[str]:
    """The hosts an Apprise plugin connects to that come from its URL (none for fixed-endpoint services such as
    Telegram, where the URL's "host" is a token)."""
    takes_host = any("{host}" in template for template in getattr(plugin, "templates", ()))
    if not takes_host:
        return []
    return [host for host in (getattr(plugin, "smtp_host", None) or getattr(plugin, "host", None),) if host]


def apprise_send(*, url: str, title: str, body: str, timeout: float, allow_private: bool) -> SendResult:
    """Send through Apprise. Apprise reports success or failure only: a failure is retried."""
    started = time.perf_counter()
    plugin = apprise_plugin(url)
    if plugin is None:
        return SendResult(Outcome.REJECTED, error="Apprise does not recognise this URL")
    try:
        for host in apprise_hosts(plugin):
            _check_apprise_host(host, allow_private=allow_private)
    except TargetRefused as exc:
        return SendResult(Outcome.REFUSED, error=str(exc), duration_ms=_since(started))
    plugin.socket_connect_timeout = plugin.socket_read_timeout = timeout
    plugin.redirects = False  # a redirect would lead past the address check (Apprise follows them by default)
    try:
        delivered = plugin.notify(body=body, title=title)
    except Exception as exc:  # noqa: BLE001 - a plugin's own failure is this attempt's failure
        # The class only: a plugin's message may quote its request URL, which holds the service's credentials.
        return SendResult(Outcome.RETRY, error=type(exc).__name__, duration_ms=_since(started))
    if delivered:
        return SendResult(Outcome.DELIVERED, duration_ms=_since(started))
    return SendResult(Outcome.RETRY, error=f"{plugin.service_name} reported a failure", duration_ms=_since(started))


def _check_apprise_host(host: str, *, allow_private: bool) -> None:
    if allow_private:
        return
    with contextlib.suppress(OSError):  # a name that does not resolve: Apprise's own attempt fails, and is retried
        resolve_target(host, 0, allow_private=False)


# ---------------------------------------------------------------------------------------------- retries
def retry_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): exponential, base x 2^(attempt-1) capped at `cap`,
    with "equal jitter" (uniform between half of it and all of it), so retries of many deliveries spread out."""
    return rng.uniform(*retry_window(attempt, base=base, cap=cap))


def retry_window(attempt: int, *, base: float, cap: float) -> tuple[float, float]:
    """The bounds `retry_delay` draws from for `attempt`."""
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return ceiling / 2, ceiling


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
