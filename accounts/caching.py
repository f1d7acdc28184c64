"""Versioned writes to the accounts caches (`perm:` permissions, `token:` resolved tokens).

Responsible for the order of racing cache writes. Two writers (a service after commit, a reader filling a
miss) can land out of order: a stalled thread's older value would overwrite a newer one. Every value therefore
carries a `version` (an integer that grows with the source row: its `updated_at` in epoch microseconds, taken
under the row lock), and every write goes through one Lua script that sets the key only when it is absent or
holds an older version (or a value without one). Tombstones (a revoked token, a deleted user) carry
`TOMBSTONE_VERSION`, so nothing overwrites them until they expire.

Fails soft like `nija.cache`: a Redis error is logged and reported as None, so the caller can schedule a retried
delete (accounts.tasks) and readers fall back to PostgreSQL.
"""

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Final

from django.core.serializers.json import DjangoJSONEncoder
from redis import RedisError

from nija.cache import LuaScript, Namespace, raw_client

logger = logging.getLogger(__name__)

VERSION_FIELD: Final = "version"
# Larger than any microsecond timestamp, and exact as a Lua number (a double): 2**53 - 1.
TOMBSTONE_VERSION: Final = 2**53 - 1
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

SET_IF_NEWER: Final = LuaScript("""
local current = redis.call('GET', KEYS[1])
if current then
    local ok, data = pcall(cjson.decode, current)
    if ok and type(data) == 'table' then
        local held = tonumber(data['version'])
        if held and held >= tonumber(ARGV[2]) then
            return 0
        end
    end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
""")


def version_of(moment: datetime) -> int:
    """A row's `updated_at` as an exact integer of microseconds since the epoch (no float rounding)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def set_if_newer(namespace: Namespace, key: str, value: dict, *, version: int, ttl: int | None = None) -> bool | None:
    """Store `value` (JSON, with `version` added) unless the key holds an equal or newer version.

    True: written; False: a newer (or equal) version or a tombstone is there; None: Redis failed (logged)."""
    seconds = ttl or namespace.default_ttl
    if not seconds or seconds <= 0:
        raise ValueError(f"a versioned write needs a positive ttl, got {seconds!r}")
    payload = json.dumps({**value, VERSION_FIELD: version}, cls=DjangoJSONEncoder)
    try:
        return bool(SET_IF_NEWER(raw_client(), [namespace.raw_key(key)], [payload, int(version), int(seconds)]))
    except RedisError:
        logger.warning("cache_unavailable", extra={"namespace": namespace.name, "op": "set_if_newer"}, exc_info=True)
        return None


def cache_evict(namespace: Namespace, key: str) -> bool:
    """Delete a key; True when one was deleted. Raises `redis.RedisError` (for a retrying caller, unlike
    `Namespace.delete`, which fails soft)."""
    return bool(raw_client().delete(namespace.raw_key(key)))
