"""Bot liveness in Redis: every authenticated request of a bot token is a heartbeat, and no heartbeat writes to
PostgreSQL.

Two keys under the `heartbeat:` namespace:

- `nija:heartbeat:seen`, a sorted set: member the account id, score the epoch second of its bot's last request.
  `ZADD ... GT` only ever moves a score forward, at whole seconds, so however many processes record the same bot,
  its entry changes at most once a second; each process also sends at most one write a second per bot (an
  in-process guard), so a burst of requests costs one Redis round trip, not one each.
- `nija:heartbeat:lost`, a set: the accounts the heartbeat watchdog (monitoring) marked silent. The write above is
  one script that also takes the account out of this set and says whether it was in it, so the one request that
  ends a silence learns it without a query and restores the account (accounts.services.heartbeat_restore), and
  every other request costs nothing in PostgreSQL.

Both keys are bounded by the number of accounts and carry a TTL the watchdog renews on every run. Fails soft: a
Redis error is logged and the request goes on (the watchdog then reads the time PostgreSQL last knew, and does
nothing at all while it cannot read Redis).
"""

import logging
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

from redis import RedisError

from nija.cache import LuaScript, Namespace, raw_client

logger = logging.getLogger(__name__)

HEARTBEAT = Namespace("heartbeat", default_ttl=7 * 86_400)
SEEN_KEY: Final = "seen"
LOST_KEY: Final = "lost"
# The in-process guard forgets everything past this many bots (a dictionary, never unbounded).
GUARD_MAX_ENTRIES: Final = 100_000

# The write as a Lua function, which a bearer request's one round trip also calls (accounts.token_gate). Returns 1
# when the account was in the lost set.
HEARTBEAT_LUA: Final = """
local function heartbeat_record(seen_key, lost_key, second, instance_id)
    redis.call('ZADD', seen_key, 'GT', second, instance_id)
    return redis.call('SREM', lost_key, instance_id)
end
"""
RECORD: Final = LuaScript(HEARTBEAT_LUA + "return heartbeat_record(KEYS[1], KEYS[2], ARGV[1], ARGV[2])")

_guard: dict[int, int] = {}
_guard_lock = threading.Lock()


def seen_key() -> str:
    return HEARTBEAT.raw_key(SEEN_KEY)


def lost_key() -> str:
    return HEARTBEAT.raw_key(LOST_KEY)


def heartbeat_record(instance_id: int, *, now_second: int | None = None) -> bool:
    """Record a request of the account's bot at this second. True when the account was marked silent: the caller
    restores it. At most one Redis write a second per bot from this process; a Redis error is logged, never
    raised."""
    second = int(time.time()) if now_second is None else now_second
    if not heartbeat_due(instance_id, second):
        return False
    try:
        was_lost = RECORD(raw_client(), [seen_key(), lost_key()], [second, instance_id])
    except RedisError:
        heartbeat_undue(instance_id)  # the next request tries again
        logger.warning("heartbeat_unrecorded", extra={"account_id": instance_id}, exc_info=True)
        return False
    return bool(was_lost)


def heartbeat_due(instance_id: int, second: int) -> bool:
    """Whether this process still has to write the bot's heartbeat for `second`; True takes that write on (the
    in-process guard), so a caller that then does not write it must call `heartbeat_undue`."""
    with _guard_lock:
        if _guard.get(instance_id) == second:
            return False
        if len(_guard) >= GUARD_MAX_ENTRIES:
            _guard.clear()
        _guard[instance_id] = second
    return True


def heartbeat_undue(instance_id: int) -> None:
    """Give back a write `heartbeat_due` handed out and that was not made: the next request writes it."""
    with _guard_lock:
        _guard.pop(instance_id, None)


def heartbeat_guard_clear() -> None:
    """Forget this process's per-second guard (tests that move the clock, or flush Redis, start from nothing)."""
    with _guard_lock:
        _guard.clear()


def last_seen(instance_ids: Iterable[int]) -> dict[int, datetime]:
    """The last recorded request of each account's bot (one ZMSCORE); an account never seen is absent. Raises
    `redis.RedisError`: a caller that cannot do without (the watchdog) must know."""
    ids = list(instance_ids)
    if not ids:
        return {}
    scores = raw_client().zmscore(seen_key(), ids)
    return {
        instance_id: datetime.fromtimestamp(int(score), tz=UTC)
        for instance_id, score in zip(ids, scores, strict=True)
        if score is not None
    }


def last_seen_or_empty(instance_ids: Iterable[int]) -> dict[int, datetime]:
    """`last_seen`, reading as nothing seen when Redis fails (logged): for pages and figures, which then show what
    PostgreSQL knows."""
    try:
        return last_seen(instance_ids)
    except RedisError:
        logger.warning("heartbeat_unreadable", exc_info=True)
        return {}


def lost_mark(instance_ids: Iterable[int]) -> None:
    """Put accounts in the lost set (the watchdog, after its commit), and renew both keys' TTL. Raises
    `redis.RedisError`."""
    ids = list(instance_ids)
    ttl = HEARTBEAT.default_ttl
    pipe = raw_client().pipeline(transaction=False)
    if ids:
        pipe.sadd(lost_key(), *ids)
        pipe.expire(lost_key(), ttl)
    pipe.expire(seen_key(), ttl)
    pipe.execute()


def lost_forget(instance_ids: Iterable[int]) -> None:
    """Take accounts out of the lost set (restored by the watchdog rather than by a request). Raises
    `redis.RedisError`."""
    ids = list(instance_ids)
    if ids:
        raw_client().srem(lost_key(), *ids)
