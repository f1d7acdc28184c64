"""The heartbeat watchdog: a bot silent past its heartbeat_timeout raises one warning event, shows as stale and
loses its unfilled reservations (cancel-on-disconnect); its next request brings it back.

Liveness is any authenticated request of the bot's token, recorded in Redis (accounts.liveness), never in
PostgreSQL per request. PostgreSQL's `last_heartbeat` follows it lazily: this run copies the Redis time into it
once it is half a timeout old, so a Redis that lost its data leaves the watchdog a recent enough time to judge by
(and a Redis it cannot read makes the run do nothing: it cannot tell a silent bot from a live one).

One run (the periodic task), in a fixed number of queries and Redis round trips whatever the number of accounts:

1. Unlocked reads: the active accounts that could have anything to do (marked silent, never persisted, or whose
   persisted time is half a timeout old), with their timeout (the override, else the portfolio default), and their
   Redis times (one ZMSCORE). The verdicts (`heartbeat_verdicts`, pure) say which went silent, which came back and
   which times to persist. Usually nothing: no lock, no write.
2. Under the portfolio lock (the first lock of every path that writes account rows, so this one never waits in
   the wrong order): the times persisted, the silent accounts marked (`heartbeat_lost_at`, set only where it is
   empty and the persisted time is still past the timeout: two runs raise one event), one warning event each,
   the accounts that came back restored.
3. After commit: the silent accounts go into Redis's lost set (the request that ends a silence restores at once),
   and a bot heard from between step 1 and that moment is restored now. Then the silent accounts' unfilled
   reservations are released, at most `MONITORING_HEARTBEAT_RELEASE_BATCH` positions a run, each through the
   release every other path uses (its own transaction in the lock order, the mark re-read under the account's
   lock); what is left goes in the next run.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from redis import RedisError

from accounts.liveness import last_seen, lost_forget, lost_mark
from accounts.services import heartbeat_restore
from nija.events import publish_on_commit
from risk import locks
from risk.models import RiskEvent, Severity
from risk.outputs import risk_event_json
from risk.services.trading_state import silent_accounts_release

logger = structlog.get_logger(__name__)

EVENT_TYPE = "heartbeat_lost"


@dataclass(frozen=True)
class Watched:
    """One account the run looks at: its persisted time, its mark and its timeout."""

    account_id: int
    last_heartbeat: datetime | None
    lost_at: datetime | None
    timeout: timedelta


@dataclass(frozen=True)
class Verdicts:
    """What the run must write: times to persist (account -> time), accounts gone silent (account -> the cutoff
    their persisted time must still be before), accounts back."""

    persist: dict[int, datetime] = field(default_factory=dict)
    lose: dict[int, datetime] = field(default_factory=dict)
    restore: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.persist or self.lose or self.restore)


@dataclass(frozen=True)
class WatchResult:
    lost: tuple[int, ...] = ()
    restored: tuple[int, ...] = ()
    released_position_ids: tuple[int, ...] = ()
    skipped: bool = False  # Redis could not be read: nothing was judged


def heartbeat_verdicts(watched: Iterable[Watched], seen: Mapping[int, datetime], *, now: datetime) -> Verdicts:
    """Pure: each account's last sign of life is the later of its persisted and its Redis time (none: never heard
    from, nothing to judge). Silent past its timeout and not marked: lose it; marked but heard from within it:
    restore it; a Redis time newer than the persisted one: persist it."""
    persist: dict[int, datetime] = {}
    lose: dict[int, datetime] = {}
    restore: list[int] = []
    for account in watched:
        recorded = seen.get(account.account_id)
        if recorded is not None and (account.last_heartbeat is None or recorded > account.last_heartbeat):
            persist[account.account_id] = recorded
        latest = max(filter(None, (account.last_heartbeat, recorded)), default=None)
        if latest is None:
            continue
        cutoff = now - account.timeout
        if latest < cutoff and account.lost_at is None:
            lose[account.account_id] = cutoff
        elif latest >= cutoff and account.lost_at is not None:
            restore.append(account.account_id)
    return Verdicts(persist=persist, lose=lose, restore=tuple(sorted(restore)))


# Active accounts of active users that may have something to do: marked silent, never persisted, or persisted
# half a timeout ago or more (a live bot's time is copied then; a silent one's is judged). The timeout is the
# account's override, else the portfolio default.
_WATCHED_SQL = """
SELECT a.id, a.last_heartbeat, a.heartbeat_lost_at,
       COALESCE(o.heartbeat_timeout_seconds, d.heartbeat_timeout_seconds) AS timeout
FROM accounts_tradinginstance a
JOIN accounts_user u ON u.id = a.user_id
CROSS JOIN risk_risklimits d
LEFT JOIN risk_risklimits o ON o.instance_id = a.id
WHERE d.instance_id IS NULL AND a.is_active AND u.is_active AND (
    a.heartbeat_lost_at IS NOT NULL OR a.last_heartbeat IS NULL
    OR a.last_heartbeat < %(now)s - make_interval(secs => COALESCE(o.heartbeat_timeout_seconds,
                                                                   d.heartbeat_timeout_seconds) / 2.0)
)
ORDER BY a.id
"""
_PERSIST_SQL = """
UPDATE accounts_tradinginstance a SET last_heartbeat = v.seen
FROM (SELECT unnest(%s::bigint[]) AS id, unnest(%s::timestamptz[]) AS seen) v
WHERE a.id = v.id AND (a.last_heartbeat IS NULL OR a.last_heartbeat < v.seen)
"""
_LOSE_SQL = """
UPDATE accounts_tradinginstance a SET heartbeat_lost_at = %s
FROM (SELECT unnest(%s::bigint[]) AS id, unnest(%s::timestamptz[]) AS cutoff) v
WHERE a.id = v.id AND a.is_active AND a.heartbeat_lost_at IS NULL
  AND a.last_heartbeat IS NOT NULL AND a.last_heartbeat < v.cutoff
RETURNING a.id, a.last_heartbeat
"""
_EVENTS_SQL = """
INSERT INTO risk_riskevent (type, severity, instance_id, message, details, correlation_id, created_at)
SELECT %s, %s, e.instance_id, e.message, e.details, '', %s
FROM unnest(%s::bigint[], %s::text[], %s::jsonb[]) AS e(instance_id, message, details)
ORDER BY e.instance_id
RETURNING id
"""


def heartbeat_watch(*, now: datetime | None = None) -> WatchResult:
    """One watchdog run as of `now` (default: this process's clock). See the module docstring."""
    now = now or timezone.now()
    watched = _watched(now=now)
    try:
        seen = last_seen(account.account_id for account in watched)
    except RedisError:
        logger.warning("heartbeat_watch_skipped", exc_info=True)
        return WatchResult(skipped=True)
    verdicts = heartbeat_verdicts(watched, seen, now=now)
    lost: list[int] = []
    restored: list[int] = []
    if verdicts:
        lost, restored = _apply(verdicts, now=now)
    still_lost = {account.account_id for account in watched if account.lost_at is not None} - set(restored)
    back = _after_commit(lost, still_lost, restored, seen=seen)
    released = silent_accounts_release(now=now, limit=settings.MONITORING_HEARTBEAT_RELEASE_BATCH)
    if lost or restored or back or released:
        logger.info(
            "heartbeat_watch",
            lost=len(lost),
            restored=len(restored) + len(back),
            released=len(released),
        )
    return WatchResult(
        lost=tuple(pk for pk in lost if pk not in back),
        restored=tuple(sorted({*restored, *back})),
        released_position_ids=released,
    )


def _watched(*, now: datetime) -> list[Watched]:
    with connection.cursor() as cursor:
        cursor.execute(_WATCHED_SQL, {"now": now})
        return [
            Watched(account_id=pk, last_heartbeat=last, lost_at=lost, timeout=timedelta(seconds=timeout))
            for pk, last, lost, timeout in cursor.fetchall()
        ]


def _apply(verdicts: Verdicts, *, now: datetime) -> tuple[list[int], list[int]]:
    """Persist, mark and restore under the portfolio lock; returns (marked, restored)."""
    with transaction.atomic():
        locks.set_lock_timeouts()
        locks.lock_portfolio()
        with connection.cursor() as cursor:
            if verdicts.persist:
                ids = sorted(verdicts.persist)
                cursor.execute(_PERSIST_SQL, [ids, [verdicts.persist[pk] for pk in ids]])
            marked: list[tuple[int, datetime]] = []
            if verdicts.lose:
                ids = sorted(verdicts.lose)
                cursor.execute(_LOSE_SQL, [now, ids, [verdicts.lose[pk] for pk in ids]])
                marked = sorted(cursor.fetchall())
        _events_raise(marked, now=now)
        restored = heartbeat_restore(instance_ids=list(verdicts.restore), now=None)
    return [pk for pk, _ in marked], restored


def _events_raise(marked: list[tuple[int, datetime]], *, now: datetime) -> None:
    """One warning event per account gone silent (one INSERT for all), each published after commit."""
    if not marked:
        return
    messages, details = [], []
    for pk, last in marked:
        silent = int((now - last).total_seconds())
        messages.append(
            f"Account {pk}'s bot has been silent for {silent} s (last request {last.isoformat()}): shown as stale, "
            "its unfilled reservations released until it is heard from again."
        )
        details.append({"last_heartbeat": last.isoformat(), "silent_seconds": silent})
    ids = [pk for pk, _ in marked]
    with connection.cursor() as cursor:
        cursor.execute(
            _EVENTS_SQL, [EVENT_TYPE, Severity.WARNING, now, ids, messages, [json.dumps(d) for d in details]]
        )
        event_ids = [row[0] for row in cursor.fetchall()]
    for event_id, pk, message, detail in zip(event_ids, ids, messages, details, strict=True):
        event = RiskEvent(
            id=event_id,
            type=EVENT_TYPE,
            severity=Severity.WARNING,
            instance_id=pk,
            message=message,
            details=detail,
            created_at=now,
        )
        publish_on_commit(event_type="risk_event", data=risk_event_json(event), account_id=pk)


def _after_commit(
    lost: list[int], still_lost: set[int], restored: list[int], *, seen: Mapping[int, datetime]
) -> list[int]:
    """Tell Redis which accounts are silent and which are not any more (renewing the keys' TTL), then restore any
    just marked whose bot was heard from after the times this run judged by (its request found no mark to clear).
    Returns those restored here."""
    try:
        lost_forget(restored)
        lost_mark([*lost, *sorted(still_lost)])
        if not lost:
            return []
        again = last_seen(lost)
    except RedisError:
        logger.warning("heartbeat_lost_unpublished", accounts=len(lost), exc_info=True)
        return []
    back = [pk for pk in lost if pk in again and (pk not in seen or again[pk] > seen[pk])]
    if not back:
        return []
    restored = heartbeat_restore(instance_ids=back, now=None)
    try:
        lost_forget(restored)
    except RedisError:
        logger.warning("heartbeat_lost_unpublished", accounts=len(restored), exc_info=True)
    return restored
