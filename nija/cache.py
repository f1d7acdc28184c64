"""Namespaced cache on Redis (docs/design.md, Redis layout): keys `nija:<namespace>:<key>`, JSON only, a TTL each.

Responsible for the key layout, the per-namespace default TTLs and the failure mode of cache reads and writes.

- JSON only (django-redis's JSON serializer): pickle is never read back from Redis, because anyone who can
  write to Redis could otherwise run code in our processes. A value that is not JSON reads as a miss.
- Fail soft: a Redis error (or an undecodable value) reads as a miss and a write reports False, both logged,
  so callers fall back to PostgreSQL. Code that must fail closed (the rate limiter) uses `raw_client()` and
  handles `redis.RedisError` itself.
- `Namespace.clear()` deletes with SCAN in batches (never KEYS) and returns the number of keys Redis
  actually deleted.
- Timeouts and the pool size come from settings (`REDIS_SOCKET_TIMEOUT`, `REDIS_MAX_CONNECTIONS`).
- Reads carried ahead (`prefetched_reads`): a request's first round trip (the token gate, accounts.token_gate) can
  also fetch the entries its view will read; inside the view's `with prefetched_reads(...)`, `Namespace.get`
  answers those keys from what was fetched, once each, instead of asking Redis again. On a saturated 2-core
  machine a round trip costs far more than its command (make bench: the market GET 581/s with its own round trip,
  850/s without), so the hottest views read what every request needs in one.
"""

import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final

from django.conf import settings
from django.core.cache import cache
from django_redis import get_redis_connection
from django_redis.exceptions import ConnectionInterrupted
from redis import Redis, RedisError
from redis.exceptions import NoScriptError

logger = logging.getLogger(__name__)

# What a broken Redis raises through django-redis (wrapped) or through the raw client.
CACHE_ERRORS: Final = (ConnectionInterrupted, RedisError)
CLEAR_BATCH_SIZE: Final = 1000


def make_key(key: str, key_prefix: str, version: int) -> str:
    """The cache's KEY_FUNCTION: `nija:<key>` as docs/design.md, Redis layout lays it out (no version segment).

    Django's default inserts the version (`nija:1:market:BTC-USD`); a version other than the default 1 is
    kept as a segment so `cache.incr_version` still separates generations.
    """
    if version == 1:
        return f"{key_prefix}:{key}"
    return f"{key_prefix}:{version}:{key}"


def key_prefix() -> str:
    return settings.CACHES["default"].get("KEY_PREFIX", "nija")


def raw_client() -> Redis:
    """The raw redis-py client behind the cache (same pool and timeouts), for Lua, sorted sets and streams."""
    return get_redis_connection("default")


class LuaScript:
    """A Redis Lua script called by its SHA1 (EVALSHA: no script text on the wire). A server that lacks it (the first
    call, a restart, SCRIPT FLUSH) gets it once through EVAL, which also caches it there. Raises `redis.RedisError`."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis's script id, not security

    def __call__(self, client: Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return client.eval(self.source, len(keys), *keys, *args)


# Raw key -> the bytes the request's first round trip read (None: no such key), for the views' `prefetched_reads`.
Prefetched = Mapping[str, bytes | None]
_prefetched: ContextVar[dict[str, bytes | None] | None] = ContextVar("nija_cache_prefetched", default=None)
_PREFETCHED_ATTRIBUTE: Final = "nija_cache_prefetched"


def prefetched_attach(request: object, values: Prefetched) -> None:
    """Keep what the request's first round trip read for its view (on the Django request object)."""
    setattr(request, _PREFETCHED_ATTRIBUTE, values)


def prefetched_of(request: object) -> Prefetched:
    """What was read ahead for `request` (nothing when its first round trip read nothing for it)."""
    return getattr(request, _PREFETCHED_ATTRIBUTE, None) or {}


@contextmanager
def prefetched_reads(values: Prefetched) -> Iterator[None]:
    """Meanwhile, `Namespace.get` answers the raw keys of `values` from them, each once (a second read of a key, say
    after a write, asks Redis), and every other key from Redis."""
    token = _prefetched.set(dict(values))
    try:
        yield
    finally:
        _prefetched.reset(token)


def _take_prefetched(raw_key: str) -> tuple[bool, bytes | None]:
    """(True, the bytes read ahead) the first time `raw_key` is asked for inside `prefetched_reads`; else (False,
    None)."""
    values = _prefetched.get()
    if not values or raw_key not in values:
        return False, None
    return True, values.pop(raw_key)


class _UseDefault:
    """Sentinel type: 'the namespace's default TTL' (None already means 'no expiry')."""


USE_DEFAULT: Final = _UseDefault()


@dataclass(frozen=True)
class Namespace:
    """One key namespace with its default TTL in seconds (None: no expiry, for bounded structures only)."""

    name: str
    default_ttl: int | None

    def key(self, key: str) -> str:
        """The namespaced key as passed to Django's cache (which adds the `nija:` prefix)."""
        return f"{self.name}:{key}"

    def raw_key(self, key: str) -> str:
        """The key as stored in Redis, for raw-client users (`nija:<namespace>:<key>`)."""
        return f"{key_prefix()}:{self.key(key)}"

    def get(self, key: str, default: Any = None, *, strict: bool = False) -> Any:
        """The cached value, or `default` on a miss, a Redis error or a value that is not JSON.

        `strict`: a Redis error is raised instead of read as a miss, for callers that must fail closed (a risk
        check must not price without a mark that exists only because Redis did not answer).

        Inside `prefetched_reads`, a key read ahead is answered from that (decoded as django-redis decodes)."""
        found, raw = _take_prefetched(self.raw_key(key))
        if found:
            return self._decoded(raw, default)
        try:
            return cache.get(self.key(key), default)
        except CACHE_ERRORS as exc:
            if strict:  # one exception type for callers: django-redis wraps redis-py's errors in its own
                raise exc if isinstance(exc, RedisError) else RedisError(f"cache unavailable: {exc}") from exc
            self._log_failure("get")
        except ValueError:
            # Not JSON (a pickled payload, say): never unpickled, read as a miss.
            logger.warning("cache_value_undecodable", extra={"namespace": self.name})
        return default

    def _decoded(self, raw: bytes | None, default: Any) -> Any:
        if raw is None:
            return default
        try:
            return cache.client.decode(raw)
        except ValueError:
            logger.warning("cache_value_undecodable", extra={"namespace": self.name})
            return default

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        """The cached values of `keys` in one round trip (MGET), by key; a missing key is absent from the result.
        Fails soft like `get`: a Redis error or an undecodable value reads as all missing (logged)."""
        if not keys:
            return {}
        try:
            found = cache.get_many([self.key(key) for key in keys])
        except CACHE_ERRORS:
            self._log_failure("get_many")
            return {}
        except ValueError:
            logger.warning("cache_value_undecodable", extra={"namespace": self.name})
            return {}
        prefix = len(self.name) + 1
        return {namespaced[prefix:]: value for namespaced, value in found.items()}

    def set(self, key: str, value: Any, ttl: int | _UseDefault | None = USE_DEFAULT) -> bool:
        """Store `value` (JSON-serializable) for `ttl` seconds (default: the namespace's). False on a Redis error."""
        timeout = self.default_ttl if isinstance(ttl, _UseDefault) else ttl
        if timeout is not None and timeout <= 0:
            raise ValueError(f"ttl must be positive or None, got {timeout!r}")
        try:
            cache.set(self.key(key), value, timeout=timeout)
        except CACHE_ERRORS:
            self._log_failure("set")
            return False
        return True

    def delete(self, key: str) -> bool:
        """True when a key was deleted; False when there was none or Redis failed."""
        try:
            return bool(cache.delete(self.key(key)))
        except CACHE_ERRORS:
            self._log_failure("delete")
            return False

    def exists(self, key: str) -> bool:
        try:
            return bool(cache.has_key(self.key(key)))
        except CACHE_ERRORS:
            self._log_failure("exists")
            return False

    def clear(self, batch_size: int = CLEAR_BATCH_SIZE) -> int:
        """Delete every key of the namespace with SCAN + UNLINK in batches; the number of keys deleted.

        Raises `redis.RedisError` when Redis fails part way (the caller must know the clear did not finish).
        Keys written during the scan may or may not be deleted (SCAN's guarantee covers keys present throughout).
        """
        client = raw_client()
        deleted = 0
        batch: list[bytes] = []
        for raw in client.scan_iter(match=self._raw_pattern(), count=batch_size):
            batch.append(raw)
            if len(batch) >= batch_size:
                deleted += client.unlink(*batch)
                batch = []
        if batch:
            deleted += client.unlink(*batch)
        return deleted

    def _raw_pattern(self) -> str:
        escaped = "".join(f"\\{char}" if char in "*?[]\\" else char for char in self.name)
        return f"{key_prefix()}:{escaped}:*"

    def _log_failure(self, op: str) -> None:
        logger.warning("cache_unavailable", extra={"namespace": self.name, "op": op}, exc_info=True)


MARKET = Namespace("market", default_ttl=60)
# Sessions set their own TTL (nija/sessions.py: settings.SESSION_CACHE_TTL, 300 s by default); this matches it.
SESSION = Namespace("session", default_ttl=300)
PERM = Namespace("perm", default_ttl=300)
TOKEN = Namespace("token", default_ttl=60)
RATE = Namespace("rate", default_ttl=None)
POSITION = Namespace("position", default_ttl=300)
BALANCE = Namespace("balance", default_ttl=300)
DASH = Namespace("dash", default_ttl=120)
# The last finish of each Celery task (nija.metrics), for health pages.
TASKS = Namespace("task", default_ttl=7 * 86400)
