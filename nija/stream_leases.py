"""Caps on open streams per holder (a token, an operator's session), shared by every events process.

A holder's open streams are leases in one Redis sorted set (`nija:events:open:<holder>`, member = a random lease
id, score = when the lease lapses, Redis's own clock). Opening a stream prunes lapsed leases and takes one only
below the cap, atomically (one script). While streams run, this process's `lease_keeper` renews all their
leases together, in one round trip every RENEW_AFTER_SECONDS (a thousand streams renewing one by one would
stall the event loop); a stream returns its lease when it ends. A process that dies without returning its
leases frees them when they lapse (LEASE_SECONDS).

Streams are authorized once, when they open; the keeper also asks, every EVENTS_CREDENTIALS_RECHECK_SECONDS and
in one call for all of this process's streams, which of their credentials no longer stand (the check the serving
app registers with `credentials_check_register`: nija imports no app), and ends those streams. A check that fails
(PostgreSQL unreachable) ends nothing: the next one decides.
"""

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from redis import RedisError

from nija.event_store import events_redis

logger = logging.getLogger(__name__)

OPEN_PREFIX = "nija:events:open:"
LEASE_SECONDS = 60
RENEW_AFTER_SECONDS = LEASE_SECONDS / 3

# KEYS: the holder's set. ARGV: cap, lease seconds, lease id. 1 when the lease was taken, 0 at the cap.
_TAKE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], t + tonumber(ARGV[2]), ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]) + 1)
return 1
"""

# KEYS: the holder's set. ARGV: lease seconds, lease id. Pushes an existing lease's lapse time forward.
_RENEW = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZADD', KEYS[1], 'XX', t + tonumber(ARGV[1]), ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]) + 1)
return 1
"""


@dataclass(frozen=True)
class StreamLease:
    holder: str
    lease_id: str

    @property
    def key(self) -> str:
        return OPEN_PREFIX + self.holder

    def release(self) -> None:
        events_redis().zrem(self.key, self.lease_id)


def leases_renew(leases: list[StreamLease]) -> None:
    """Push every lease's lapse time forward, in one round trip."""
    renew = events_redis().register_script(_RENEW)
    with events_redis().pipeline(transaction=False) as pipe:
        for lease in leases:
            renew(keys=[lease.key], args=[LEASE_SECONDS, lease.lease_id], client=pipe)
        pipe.execute()


# Given the credentials of open streams, returns those that no longer stand (runs in a worker thread).
CredentialsCheck = Callable[[set[str]], set[str]]
_credentials_check: list[CredentialsCheck] = []


def credentials_check_register(check: CredentialsCheck) -> None:
    """Set the check the keeper runs over its streams' credentials (the app that serves the streams sets it)."""
    _credentials_check[:] = [check]


@dataclass(frozen=True)
class HeldStream:
    credential: str  # what the credentials check is asked about (the serving app's own notation)
    end: Callable[[], None]  # ends the stream (called on the event loop)


class LeaseKeeper:
    """This process's open streams' leases, renewed together while they run and returned when they end, and their
    credentials checked again while they run."""

    def __init__(self) -> None:
        self._streams: dict[StreamLease, HeldStream] = {}
        self._tasks: dict[str, asyncio.Task] = {}

    def hold(self, lease: StreamLease, *, credential: str, end: Callable[[], None]) -> None:
        """Keep `lease` renewed from now on, and call `end` once `credential` no longer stands (call from the
        event loop)."""
        self._streams[lease] = HeldStream(credential, end)
        for name, loop_forever in (
            ("nija-lease-keeper", self._renew_forever),
            ("nija-stream-credentials", self._recheck_forever),
        ):
            task = self._tasks.get(name)
            if task is None or task.done():
                self._tasks[name] = asyncio.get_running_loop().create_task(loop_forever(), name=name)

    def drop(self, lease: StreamLease) -> None:
        """Stop renewing `lease` and return it (in a worker thread: the caller never waits on Redis)."""
        self._streams.pop(lease, None)
        asyncio.get_running_loop().run_in_executor(None, _quietly, lease.release)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(RENEW_AFTER_SECONDS)
            if self._streams:
                await asyncio.to_thread(_quietly, leases_renew, list(self._streams))

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(settings.EVENTS_CREDENTIALS_RECHECK_SECONDS)
            streams = list(self._streams.values())
            if not streams or not _credentials_check:
                continue
            try:
                fallen = await asyncio.to_thread(_credentials_check[0], {stream.credential for stream in streams})
            except Exception:  # PostgreSQL unreachable...: the streams go on, the next check decides
                logger.warning("stream_credentials_check_failed", exc_info=True)
                continue
            for stream in streams:
                if stream.credential in fallen:
                    stream.end()


def _quietly(call, *args: object) -> None:
    """Lease upkeep never fails a stream: a lease Redis lost simply lapses (and the stream goes on)."""
    try:
        call(*args)
    except RedisError:
        logger.info("stream_lease_upkeep_failed", exc_info=True)


lease_keeper = LeaseKeeper()


def lease_take(*, holder: str, cap: int) -> StreamLease | None:
    """A lease for one more open stream of `holder`, or None when it already holds `cap` of them."""
    lease = StreamLease(holder=holder, lease_id=secrets.token_hex(8))
    taken = events_redis().eval(_TAKE, 1, lease.key, cap, LEASE_SECONDS, lease.lease_id)
    return lease if taken else None


def leases_held(holder: str) -> int:
    """How many unexpired leases `holder` holds (for tests and health pages)."""
    client = events_redis()
    seconds, microseconds = client.time()
    return client.zcount(OPEN_PREFIX + holder, seconds + microseconds / 1_000_000, "+inf")
