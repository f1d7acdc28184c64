"""The client address of a request: the one answer the API's rate limits, the failed-token limiter, the admin
login limiter and the request logs all use.

`X-Forwarded-For` is written by whoever sends the request, so it is read only as far as the deployment vouches
for it: `TRUSTED_PROXY_COUNT` says how many proxies of ours stand in front of the server.

- 0 (`make run`, a server reached directly): `REMOTE_ADDR`; the header is ignored whatever it says.
- N: each of our proxies appends the address it received the request from, so the N-th entry from the right
  is the address the outermost of them saw. Entries further left were sent by the client and are never read.
  The compose proxy (docker/nginx.conf) is the only one there and overwrites the header with its peer's address.

A header with fewer than N entries (a request that did not come through every proxy) or an entry that is not an
IP address falls back to `REMOTE_ADDR`: such clients share one limit rather than choosing their own.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest
from rest_framework.request import Request

FORWARDED_FOR = "HTTP_X_FORWARDED_FOR"


def client_ip(request: HttpRequest | Request) -> str:
    """The address to count and log a request under (see the module docstring)."""
    remote_addr = request.META.get("REMOTE_ADDR", "")
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted <= 0:
        return remote_addr
    entries = [entry.strip() for entry in request.META.get(FORWARDED_FOR, "").split(",")]
    if len(entries) < trusted or not entries[-trusted]:
        return remote_addr
    try:
        return str(ipaddress.ip_address(entries[-trusted]))
    except ValueError:
        return remote_addr
