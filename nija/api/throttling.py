"""The API's rate limits: a DRF throttle over the exact sliding-window limiter (`nija.ratelimit`).

Responsible for who is counted (identity), against which limit (scope and tier), the failure mode when Redis
is unreachable, and the `X-RateLimit-*` headers. It imports no app: it reads attributes only.

- Identity: the API token (`tok:<token_id>`, from `request.auth.token_id`), else the user (`user:<pk>`), else
  the client address (`ip:<addr>`, `nija.client_ip`: X-Forwarded-For only as far as TRUSTED_PROXY_COUNT vouches
  for it, so a client cannot pick a fresh identity per request).
- Scope: the view's `throttle_scope` (default `"default"`). Limits: `settings.RATE_LIMITS[scope][tier]` as
  `(requests, window_seconds)`. Tier: `operator` for operator tokens and staff sessions, `anonymous` without a
  user, else `request.auth.tier` or `request.user.subscription_tier`; a tier a scope lacks uses its `free` row.
- Redis unreachable: scopes in `settings.RATE_LIMIT_FAIL_CLOSED_SCOPES` answer 503 `rate_limiter_unavailable`
  (Retry-After 1): the client is not over a limit, the limiter is down. Every other scope lets the request
  through, logged and counted (`nija.ratelimit.fail_open_count`).
- A decision taken earlier in the request (`rate_decision_prefetch`: a bearer request is counted in the same Redis
  round trip that reads its token, accounts.token_gate) is used when it is for the very window the throttle
  computes; otherwise the throttle counts the request itself.
- Headers: over the limit DRF raises `Throttled` (429, `rate_limited`, Retry-After = whole seconds until the
  oldest entry leaves the window); under or over it, `RateLimitHeadersMiddleware` adds `X-RateLimit-Limit` and
  `X-RateLimit-Remaining` from the decision the throttle stashed on the request.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from redis import RedisError
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from nija.client_ip import client_ip
from nija.metrics import RATE_LIMIT_DENIALS, RATE_LIMIT_FAIL_OPEN
from nija.ratelimit import RateDecision, rate_limit_hit, record_fail_open

DEFAULT_SCOPE = "default"
FALLBACK_TIER = "free"
REQUEST_ATTR = "nija_rate_limit"
PREFETCHED_ATTR = "_nija_rate_prefetched"


class RateLimiterUnavailable(exceptions.APIException):
    """A fail-closed scope with Redis unreachable: 503, retry shortly.

    A plain DRF exception (the error handler renders its code): importing `nija.api.errors` here would import
    `rest_framework.views`, which reads DEFAULT_THROTTLE_CLASSES, which is this module.
    """

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "rate_limiter_unavailable"
    default_detail = "The rate limiter is unavailable; retry shortly."
    wait = 1


def tier_of(user: Any, principal: Any) -> str:
    """The limit row a request of `user` authenticated as `principal` (None: a session) is counted against."""
    if not (user and user.is_authenticated):
        return "anonymous"
    kind = getattr(principal, "kind", None)
    if kind == "operator" or (principal is None and user.is_staff):
        return "operator"
    return getattr(principal, "tier", None) or getattr(user, "subscription_tier", None) or FALLBACK_TIER


def request_tier(request: Request) -> str:
    """The limit row a request is counted against."""
    return tier_of(request.user, request.auth)


def token_identity(token_id: int) -> str:
    return f"tok:{token_id}"


def request_identity(request: Request) -> str:
    """Whom a request is counted for: its token, else its user, else its client address."""
    token_id = getattr(request.auth, "token_id", None)
    if token_id is not None:
        return token_identity(token_id)
    user = request.user
    if user and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{client_ip(request)}"


def scope_limit(scope: str, tier: str) -> tuple[int, float]:
    """(requests, window_seconds) for a scope and tier, from settings.RATE_LIMITS."""
    try:
        rows = settings.RATE_LIMITS[scope]
    except KeyError:
        raise ImproperlyConfigured(f"RATE_LIMITS has no scope {scope!r}") from None
    requests, window_seconds = rows.get(tier) or rows[FALLBACK_TIER]
    return int(requests), float(window_seconds)


@dataclass(frozen=True)
class RateWindow:
    """The window one request is counted in: `<scope>:<identity>`, its limit and its length."""

    identifier: str
    limit: int
    window_ms: int


def rate_window(scope: str, tier: str, identity: str) -> RateWindow:
    limit, window_seconds = scope_limit(scope, tier)
    return RateWindow(f"{scope}:{identity}", limit, round(window_seconds * 1000))


def throttle_scope_of(view: object) -> str:
    return getattr(view, "throttle_scope", None) or DEFAULT_SCOPE


def counted_by_sliding_window(view: object) -> bool:
    """Whether the view's throttles include this module's (views may set `throttle_classes = []`)."""
    return any(issubclass(cls, SlidingWindowThrottle) for cls in getattr(view, "throttle_classes", ()))


def rate_decision_prefetch(request: HttpRequest, window: RateWindow, decision: RateDecision) -> None:
    """Hand the throttle a decision already taken for this request (accounts.token_gate counts a bearer request in
    the round trip that reads its token). The throttle uses it only for the very window it computes itself, once."""
    request.__dict__[PREFETCHED_ATTR] = (window, decision)


def _prefetched(request: Request, window: RateWindow) -> RateDecision | None:
    prefetched = request._request.__dict__.pop(PREFETCHED_ATTR, None)
    if prefetched is None or prefetched[0] != window:
        return None
    return prefetched[1]


class SlidingWindowThrottle(BaseThrottle):
    """DEFAULT_THROTTLE_CLASSES entry: exact per-identity limits by scope and subscription tier."""

    def __init__(self) -> None:
        self.decision: RateDecision | None = None

    def allow_request(self, request: Request, view: object) -> bool:
        scope = throttle_scope_of(view)
        window = rate_window(scope, request_tier(request), request_identity(request))
        self.decision = _prefetched(request, window)
        if self.decision is None:
            try:
                self.decision = rate_limit_hit(window.identifier, window.limit, window.window_ms)
            except RedisError:
                if scope in settings.RATE_LIMIT_FAIL_CLOSED_SCOPES:
                    raise RateLimiterUnavailable() from None
                record_fail_open(window.identifier)
                RATE_LIMIT_FAIL_OPEN.labels(scope).inc()
                return True
        setattr(request._request, REQUEST_ATTR, self.decision)
        if not self.decision.allowed:
            RATE_LIMIT_DENIALS.labels(scope).inc()
        return self.decision.allowed

    def get_ident(self, request: Request) -> str:
        """DRF's own notion of the client, kept equal to ours for any code that asks the throttle for it."""
        return client_ip(request)

    def wait(self) -> float | None:
        """Seconds until a slot frees (whole seconds: the error handler writes Retry-After as an integer)."""
        return float(self.decision.retry_after_seconds) if self.decision else None


class RateLimitHeadersMiddleware:
    """Adds `X-RateLimit-Limit` / `X-RateLimit-Remaining` to responses of throttled requests (429 included)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        decision: RateDecision | None = getattr(request, REQUEST_ATTR, None)
        if decision is not None:
            response["X-RateLimit-Limit"] = str(decision.limit)
            response["X-RateLimit-Remaining"] = str(decision.remaining)
        return response
