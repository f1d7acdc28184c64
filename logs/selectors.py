"""Reads of the recent-log stream (`/api/logs`) and of the sink's drop counters (`/api/health`).

The stream holds at most 10,000 entries, so a query walks it newest first in chunks, filters in Python and
stops as soon as it has `limit` matches (or, with `since`, once entries are clearly older than `since`).
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django_redis import get_redis_connection

from logs.sinks import DEFAULT_DROPS_KEY, DEFAULT_STREAM_KEY, STREAM_FIELD, active_sink

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_CHUNK = 500
# Stream ids carry Redis's clock at XADD; a line waits at most a few seconds in a process's queue.
_ENQUEUE_SLACK = timedelta(minutes=1)


@dataclass(frozen=True)
class LogQuery:
    level: str | None = None
    logger: str | None = None
    correlation_id: str | None = None
    user_id: str | None = None
    account_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100

    def matches(self, entry: dict[str, Any]) -> bool:
        return (
            (self.level is None or LEVELS.get(str(entry.get("level")), 0) >= LEVELS[self.level])
            and (self.logger is None or _is_logger_or_child(str(entry.get("logger", "")), self.logger))
            and (self.correlation_id is None or self.correlation_id in _correlation_ids(entry))
            and (self.user_id is None or _as_text(entry.get("user_id")) == self.user_id)
            and (self.account_id is None or _as_text(entry.get("account_id")) == self.account_id)
            and self._in_time_range(entry)
        )

    def _in_time_range(self, entry: dict[str, Any]) -> bool:
        if self.since is None and self.until is None:
            return True
        moment = _parse_timestamp(entry.get("timestamp"))
        if moment is None:
            return False
        return (self.since is None or moment >= self.since) and (self.until is None or moment <= self.until)


def _is_logger_or_child(name: str, logger: str) -> bool:
    """`risk` matches `risk` and `risk.services`, never `riskwatch`."""
    return name == logger or name.startswith(logger + ".")


def _as_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _correlation_ids(entry: dict[str, Any]) -> tuple[Any, ...]:
    return (entry.get("request_id"), entry.get("correlation_id"))


def _parse_timestamp(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _entries_newest_first(client: Any, since: datetime | None) -> Iterator[dict[str, Any]]:
    upper = "+"
    stop_before_ms = int((since - _ENQUEUE_SLACK).timestamp() * 1000) if since else None
    while True:
        chunk = client.xrevrange(DEFAULT_STREAM_KEY, max=upper, min="-", count=_CHUNK)
        for stream_id, fields in chunk:
            stream_id = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
            if stop_before_ms is not None and int(stream_id.split("-")[0]) < stop_before_ms:
                return
            entry = _decode(fields)
            if entry is not None:
                entry["stream_id"] = stream_id
                yield entry
        if len(chunk) < _CHUNK:
            return
        upper = f"({stream_id}"


def _decode(fields: dict) -> dict[str, Any] | None:
    raw = fields.get(STREAM_FIELD.encode()) or fields.get(STREAM_FIELD)
    try:
        entry = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return entry if isinstance(entry, dict) else None


def log_entry_list(*, query: LogQuery) -> list[dict[str, Any]]:
    """Recent log entries matching `query`, newest first, at most `query.limit`."""
    client = get_redis_connection("default")
    results: list[dict[str, Any]] = []
    for entry in _entries_newest_first(client, query.since):
        if query.matches(entry):
            results.append(entry)
            if len(results) >= query.limit:
                break
    return results


def log_drop_stats() -> dict[str, int | None]:
    """Lines this process dropped, and the total every process has reported to Redis (None: Redis down)."""
    sink = active_sink()
    try:
        shared = get_redis_connection("default").get(DEFAULT_DROPS_KEY)
        total: int | None = int(shared or 0)
    except Exception:  # noqa: BLE001 - the health answer must not fail with Redis
        total = None
    return {
        "dropped_this_process": sink.dropped if sink else 0,
        "unreported_this_process": sink.unreported_drops if sink else 0,
        "dropped_reported_total": total,
    }
