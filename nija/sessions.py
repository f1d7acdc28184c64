"""Django sessions on the cache, backed by PostgreSQL (`SESSION_ENGINE = "nija.sessions"`).

Responsible for where sessions live: Django's `cached_db` engine (PostgreSQL is the record, Redis the read
cache, so a Redis restart or flush logs nobody out) with its cache keys in the `session:` namespace
(`nija:session:<session key>`, docs/design.md, Redis layout) instead of Django's `django.contrib.sessions.cached_db`
prefix, on the one cache connection pool.

Failure modes, chosen so a Redis hiccup can neither take the admin down nor keep a logged-out session alive:
- Reads and writes fail soft: an error is logged and reads as a miss (PostgreSQL answers). Django's own engine
  lets a Redis error escape from `load`'s refill and `exists`, which would turn a Redis outage into a 500 on
  every admin page.
- Deletes (logout, `flush`) fail loudly: `load` reads the cache before PostgreSQL, so a cache entry that
  survives its row's deletion keeps the session valid. A failed cache delete raises `SessionCacheDeleteFailed`
  (the request fails and the user retries it; the cache entry still authenticates the retry, which deletes it)
  instead of reporting a logout that did not happen. The one exception is login's `cycle_key`: the old key's
  entry holds only the data the new key inherits, so anyone holding the old key gains nothing from it, and a
  failed delete there is logged rather than failing every login while Redis is down.
- Every cache entry lives at most `settings.SESSION_CACHE_TTL` seconds (default 300), never the session's
  full age (up to two weeks): an entry that outlives its row, whatever the cause, dies within minutes.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore
from django_redis.exceptions import ConnectionInterrupted
from redis import RedisError

logger = logging.getLogger(__name__)

_CACHE_ERRORS = (ConnectionInterrupted, RedisError)


class SessionCacheDeleteFailed(RuntimeError):
    """A session's cache entry could not be deleted: the logout did not complete and must be retried."""


def cache_timeout(timeout: int | None) -> int:
    """The TTL a session cache entry gets: the session's remaining age, capped at `SESSION_CACHE_TTL`."""
    cap = settings.SESSION_CACHE_TTL
    return cap if timeout is None else min(timeout, cap)


class _SessionCache:
    """The session engine's view of the cache: reads and writes fail soft, deletes raise, TTLs are capped."""

    def __init__(self, cache: Any) -> None:
        self._cache = cache
        self._strict_deletes = True

    @contextmanager
    def lenient_deletes(self) -> Iterator[None]:
        """Within the block a failed delete is logged, not raised (login's key rotation only)."""
        self._strict_deletes = False
        try:
            yield
        finally:
            self._strict_deletes = True

    def _delete_failed(self, exc: Exception) -> None:
        if not self._strict_deletes:
            logger.warning("session_cache_unavailable", extra={"op": "delete"})
            return
        logger.error("session_cache_delete_failed")
        raise SessionCacheDeleteFailed("The session cache is unavailable; the logout did not complete.") from exc

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self._cache.get(key, default)
        except (*_CACHE_ERRORS, ValueError):
            logger.warning("session_cache_unavailable", extra={"op": "get"})
            return default

    def set(self, key: str, value: Any, timeout: int | None = None) -> None:
        try:
            self._cache.set(key, value, cache_timeout(timeout))
        except _CACHE_ERRORS:
            logger.warning("session_cache_unavailable", extra={"op": "set"})

    def delete(self, key: str) -> None:
        try:
            self._cache.delete(key)
        except _CACHE_ERRORS as exc:
            self._delete_failed(exc)

    async def aget(self, key: str, default: Any = None) -> Any:
        try:
            return await self._cache.aget(key, default)
        except (*_CACHE_ERRORS, ValueError):
            logger.warning("session_cache_unavailable", extra={"op": "get"})
            return default

    async def aset(self, key: str, value: Any, timeout: int | None = None) -> None:
        try:
            await self._cache.aset(key, value, cache_timeout(timeout))
        except _CACHE_ERRORS:
            logger.warning("session_cache_unavailable", extra={"op": "set"})

    async def adelete(self, key: str) -> None:
        try:
            await self._cache.adelete(key)
        except _CACHE_ERRORS as exc:
            self._delete_failed(exc)

    def __contains__(self, key: str) -> bool:
        try:
            return key in self._cache
        except _CACHE_ERRORS:
            logger.warning("session_cache_unavailable", extra={"op": "exists"})
            return False

    def __str__(self) -> str:
        return str(self._cache)


class SessionStore(CachedDBStore):
    cache_key_prefix = "session:"

    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        self._cache = _SessionCache(self._cache)

    def cycle_key(self) -> None:
        """Login's key rotation: a failed cache delete of the old key is logged, not raised (module docstring)."""
        with self._cache.lenient_deletes():
            super().cycle_key()

    async def acycle_key(self) -> None:
        with self._cache.lenient_deletes():
            await super().acycle_key()
