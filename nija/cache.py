"""Namespaced cache on Redis (DESIGN.md section 7): `nija:<namespace>:<key>`, JSON only, a TTL each.

Every value is JSON (django-redis's JSON serializer): pickle is never read back from Redis, because anyone
who can write to Redis could otherwise run code in our processes. Reads fail soft (a Redis error reads as a
miss and is logged) so callers fall back to PostgreSQL; callers that must fail closed use `raw_client()`
and handle `redis.RedisError` themselves.
"""

import logging
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django_redis import get_redis_connection
from redis import Redis, RedisError

logger = logging.getLogger(__name__)

KEY_PREFIX = "nija"


def raw_client() -> Redis:
    """The raw redis-py client behind the cache (same pool), for Lua scripts, sorted sets and streams."""
    return get_redis_connection("default")


@dataclass(frozen=True)
class Namespace:
    """One key namespace with its default TTL in seconds (None: no expiry, for bounded structures only)."""

    name: str
    default_ttl: int | None

    def key(self, key: str) -> str:
        """The namespaced key as passed to django-redis (which adds the `nija:` prefix and version)."""
        return f"{self.name}:{key}"

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return cache.get(self.key(key), default)
        except RedisError:
            logger.warning("cache_unavailable", extra={"namespace": self.name, "op": "get"})
            return default

    def set(self, key: str, value: Any, ttl: int | None = ...) -> bool:  # type: ignore[assignment]
        timeout = self.default_ttl if ttl is ... else ttl
        try:
            cache.set(self.key(key), value, timeout=timeout)
        except RedisError:
            logger.warning("cache_unavailable", extra={"namespace": self.name, "op": "set"})
            return False
        return True

    def delete(self, key: str) -> bool:
        try:
            return bool(cache.delete(self.key(key)))
        except RedisError:
            logger.warning("cache_unavailable", extra={"namespace": self.name, "op": "delete"})
            return False

    def exists(self, key: str) -> bool:
        try:
            return cache.has_key(self.key(key))
        except RedisError:
            return False


MARKET = Namespace("market", default_ttl=60)
SESSION = Namespace("session", default_ttl=14 * 24 * 3600)
PERM = Namespace("perm", default_ttl=300)
TOKEN = Namespace("token", default_ttl=60)
RATE = Namespace("rate", default_ttl=None)
POSITION = Namespace("position", default_ttl=300)
BALANCE = Namespace("balance", default_ttl=300)
DASH = Namespace("dash", default_ttl=120)
