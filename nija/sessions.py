"""Django sessions on the cache, backed by PostgreSQL (`SESSION_ENGINE = "nija.sessions"`).

Responsible for where sessions live: Django's `cached_db` engine (PostgreSQL is the record, Redis the read
cache, so a Redis restart or flush logs nobody out) with its cache keys in the `session:` namespace
(`nija:session:<session key>`, DESIGN.md section 7) instead of Django's `django.contrib.sessions.cached_db`
prefix, on the one cache connection pool. Cache failures are logged and fall through to PostgreSQL: Django's
own engine lets a Redis error escape from `load`'s refill, `exists` and `delete`, which would turn a Redis
outage into a 500 on every admin page.
"""

import logging
from typing import Any

from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore
from django_redis.exceptions import ConnectionInterrupted
from redis import RedisError

logger = logging.getLogger(__name__)

_CACHE_ERRORS = (ConnectionInterrupted, RedisError)


class _FailSoftCache:
    """The session engine's view of the cache: every error is logged and reads as a miss."""

    def __init__(self, cache: Any) -> None:
        self._cache = cache

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self._cache.get(key, default)
        except (*_CACHE_ERRORS, ValueError):
            logger.warning("session_cache_unavailable", extra={"op": "get"})
            return default

    def set(self, key: str, value: Any, timeout: Any = None) -> None:
        try:
            self._cache.set(key, value, timeout)
        except _CACHE_ERRORS:
            logger.warning("session_cache_unavailable", extra={"op": "set"})

    def delete(self, key: str) -> None:
        try:
            self._cache.delete(key)
        except _CACHE_ERRORS:
            logger.warning("session_cache_unavailable", extra={"op": "delete"})

    async def aget(self, key: str, default: Any = None) -> Any:
        try:
            return await self._cache.aget(key, default)
        except (*_CACHE_ERRORS, ValueError):
            logger.warning("session_cache_unavailable", extra={"op": "get"})
            return default

    async def aset(self, key: str, value: Any, timeout: Any = None) -> None:
        try:
            await self._cache.aset(key, value, timeout)
        except _CACHE_ERRORS:
            logger.warning("session_cache_unavailable", extra={"op": "set"})

    async def adelete(self, key: str) -> None:
        try:
            await self._cache.adelete(key)
        except _CACHE_ERRORS:
            logger.warning("session_cache_unavailable", extra={"op": "delete"})

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
        self._cache = _FailSoftCache(self._cache)
