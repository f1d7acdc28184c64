"""Exact sliding-window rate limiter: one Lua script on a Redis sorted set per key.

Responsible for the limiter's atomicity and its failure mode; the DRF throttle (`nija.api.throttling`) and the
function form `rate_limit_check` both call `rate_limit_hit`.

One check is one round trip (EVALSHA; the script is loaded once per server). Inside the script, atomically:
Redis `TIME` is the clock (every process agrees on it), entries older than the window are trimmed
(ZREMRANGEBYSCORE), counted (ZCARD), and when under the limit one entry is added (ZADD) and the key's expiry
pushed to the end of the window (PEXPIRE). Members are `<seconds>.<microseconds>-<count before the add>`, built
from TIME's own strings (Lua prints numbers with 14 digits, which would merge neighbouring microseconds): two
adds in the same microsecond see different counts (the earlier one is still in the set), so members never
collide and no hit is lost. A denied call adds nothing, so hammering a full window does not extend it.

Keys: `nija:rate:<identifier>` (the throttle passes `<scope>:<identity>`); they expire with their window. The
script's body is also a Lua function (`SLIDING_WINDOW_LUA`) that a bearer request's one round trip calls
(accounts.token_gate).
"""

import logging
import math
import threading
from dataclasses import dataclass

from redis import Redis, RedisError

from nija.cache import RATE, LuaScript, raw_client

logger = logging.getLogger(__name__)

# The window as a Lua function, so a script that does more in the same round trip (accounts.token_gate) counts a
# request exactly as SLIDING_WINDOW does. Returns {allowed (1/0), remaining, retry_ms}.
SLIDING_WINDOW_LUA = """
local function sliding_window(key, limit, window_ms)
    local window_us = window_ms * 1000
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window_us)
    local count = redis.call('ZCARD', key)
    if count < limit then
        redis.call('ZADD', key, now, t[1] .. '.' .. t[2] .. '-' .. count)
        redis.call('PEXPIRE', key, window_ms)
        return {1, limit - count - 1, 0}
    end
    local retry_ms = window_ms
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if oldest[2] then
        retry_ms = math.ceil((tonumber(oldest[2]) + window_us - now) / 1000)
    end
    if retry_ms < 1 then
        retry_ms = 1
    end
    return {0, 0, retry_ms}
end
"""
SLIDING_WINDOW = LuaScript(SLIDING_WINDOW_LUA + "return sliding_window(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))")


@dataclass(frozen=True)
class RateDecision:
    """One limiter check: allowed, the slots left in the window, and when the next slot frees (0 when allowed)."""

    allowed: bool
    limit: int
    remaining: int
    retry_after_ms: int

    @property
    def retry_after_seconds(self) -> int:
        """Whole seconds until a slot frees (Retry-After is in seconds: rounded up, never 0 when denied)."""
        return math.ceil(self.retry_after_ms / 1000)


class _FailOpenCounter:
    """Process-local count of checks let through because Redis was unreachable (read with `fail_open_count`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def increment(self) -> None:
        with self._lock:
            self._value += 1

    @property
    def value(self) -> int:
        return self._value


_fail_open = _FailOpenCounter()


def fail_open_count() -> int:
    """How many checks this process let through with Redis unreachable (fail-open scopes only)."""
    return _fail_open.value


def record_fail_open(identifier: str) -> None:
    """Log and count one check let through without a limiter."""
    _fail_open.increment()
    logger.warning("rate_limiter_unavailable_fail_open", extra={"identifier": identifier}, exc_info=True)


def rate_limit_hit(identifier: str, limit: int, window_ms: int, *, client: Redis | None = None) -> RateDecision:
    """Count one request against `limit` per sliding `window_ms` for `identifier`. Raises `redis.RedisError`.

    Callers choose the failure mode: the throttle fails closed or open per scope, `rate_limit_check` fails open.
    """
    if window_ms <= 0:
        raise ValueError(f"window_ms must be positive, got {window_ms!r}")
    client = client or raw_client()
    return rate_decision_from(limit, SLIDING_WINDOW(client, [rate_key(identifier)], [int(limit), int(window_ms)]))


def rate_key(identifier: str) -> str:
    """The Redis key of an identifier's window."""
    return RATE.raw_key(identifier)


def rate_decision_from(limit: int, reply: list) -> RateDecision:
    """The decision of one `sliding_window` call from its reply ({allowed, remaining, retry_ms})."""
    allowed, remaining, retry_ms = reply
    return RateDecision(allowed=bool(allowed), limit=int(limit), remaining=int(remaining), retry_after_ms=int(retry_ms))


def rate_limit_check(identifier: str, max_requests: int, window_seconds: float) -> tuple[bool, int]:
    """The platform's function form: (allowed, remaining) for one request. Fails open (logged and counted)."""
    try:
        decision = rate_limit_hit(identifier, max_requests, round(window_seconds * 1000))
    except RedisError:
        record_fail_open(identifier)
        return True, max_requests
    return decision.allowed, decision.remaining
