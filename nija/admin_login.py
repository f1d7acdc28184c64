"""Admin login attempts, limited per client address.

Every POST to the admin login page counts against `RATE_LIMITS["admin_login"]["anonymous"]` for its client address
(`nija.client_ip`), in the exact sliding window of `nija.ratelimit`. Past the limit the answer is 429 with
Retry-After and the password is not even checked, so guessing costs the guesser the whole window. Successful
attempts count too: an operator does not log in ten times in five minutes.

Redis unreachable: the attempt goes through, logged and counted (`nija.ratelimit.record_fail_open`). Operators must
be able to log in during a Redis outage, when they may need to halt trading.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from redis import RedisError

from nija.client_ip import client_ip
from nija.ratelimit import rate_limit_hit, record_fail_open

SCOPE = "admin_login"


class AdminLoginRateLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path_info == reverse("admin:login"):
            refused = _refusal_past_the_limit(request)
            if refused is not None:
                return refused
        return self.get_response(request)


def _refusal_past_the_limit(request: HttpRequest) -> HttpResponse | None:
    """Counts one attempt; a 429 when the address is past its limit, else None."""
    limit, window_seconds = settings.RATE_LIMITS[SCOPE]["anonymous"]
    identifier = f"{SCOPE}:ip:{client_ip(request)}"
    try:
        decision = rate_limit_hit(identifier, limit, round(window_seconds * 1000))
    except RedisError:
        record_fail_open(identifier)
        return None
    if decision.allowed:
        return None
    retry_after = decision.retry_after_seconds
    response = HttpResponse(
        f"Too many login attempts from this address. Retry in {retry_after} seconds.",
        status=429,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(retry_after)
    return response
