"""The one publisher of live events: every service calls it after commit.

Channels: `dashboard` (operators) and `account-<id>` (that account's bot). Event types: `metrics`, `risk_event`,
`position`, `state`, `alert`. An event is queued for this process's background publisher (nija.event_publisher),
which appends it to each channel's bounded replay store and fans it out through Redis to every events process
(nija.event_store), where the supervised listener (nija.event_listener) hands it to the open streams.

Publishing never waits on Redis and never raises into the caller: a publish that cannot be delivered (queue full,
Redis down) never undoes the committed change it reports (the database is the record; clients re-read it); it
is logged and counted, never silently dropped.
"""

import json
from collections.abc import Mapping
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from redis import RedisError

from nija.event_listener import listener_reports, listener_status
from nija.event_publisher import publisher
from nija.event_store import StoredEvent

__all__ = [
    "DASHBOARD_CHANNEL",
    "EVENT_TYPES",
    "account_channel",
    "channels_for",
    "events_health",
    "flush_published",
    "listener_reports",
    "listener_status",
    "publish",
    "publish_failures",
    "publish_on_commit",
    "publisher_stats",
]

DASHBOARD_CHANNEL = "dashboard"
EVENT_TYPES = frozenset({"metrics", "risk_event", "position", "state", "alert"})


def account_channel(account_id: int) -> str:
    return f"account-{account_id}"


def channels_for(account_id: int | None) -> list[str]:
    """The dashboard always; the account's own channel when the event concerns one account."""
    return [DASHBOARD_CHANNEL] if account_id is None else [DASHBOARD_CHANNEL, account_channel(account_id)]


def publish(
    *,
    event_type: str,
    data: Mapping[str, Any],
    account_id: int | None = None,
    account_data: Mapping[str, Any] | None = None,
) -> bool:
    """Queue one event for its channels; False (logged, counted) when this process's queue is full. `account_data`,
    when given, is what the account's channel gets instead of `data` (a bot may not see everything operators see)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    text = json.dumps(dict(data), cls=DjangoJSONEncoder)
    account_text = text if account_data is None else json.dumps(dict(account_data), cls=DjangoJSONEncoder)
    return publisher().submit(
        [
            StoredEvent(channel, event_type, text if channel == DASHBOARD_CHANNEL else account_text)
            for channel in channels_for(account_id)
        ]
    )


def publish_on_commit(
    *,
    event_type: str,
    data: Mapping[str, Any],
    account_id: int | None = None,
    account_data: Mapping[str, Any] | None = None,
) -> None:
    """Publish once the surrounding transaction commits (immediately outside one); nothing if it rolls back."""
    payload = dict(data)
    for_account = None if account_data is None else dict(account_data)
    transaction.on_commit(
        lambda: publish(event_type=event_type, data=payload, account_id=account_id, account_data=for_account)
    )


def publish_failures() -> int:
    """How many event messages this process could not publish (queue full, or Redis refused them)."""
    return publisher().dropped


def publisher_stats() -> dict[str, int]:
    """This process's publisher: messages published, dropped, and waiting in its queue."""
    return publisher().stats()


def flush_published(timeout: float = 5.0) -> bool:
    """Wait until this process's queued events were written (or dropped); True if that happened in time."""
    return publisher().flush(timeout)


def events_health() -> dict[str, Any]:
    """The live events' health for anyone's eyes: counts and states, never process names or error texts
    (`listener_status` and `listener_reports` carry those, for operators' pages)."""
    try:
        reports: list[dict] | None = listener_reports()
    except RedisError:
        reports = None  # the events' Redis is unreachable: no process can report
    listener = listener_status()
    return {
        "publish_failures_this_process": publish_failures(),
        "publisher_this_process": publisher_stats(),
        "listener_this_process": {key: listener[key] for key in ("running", "connected", "reconnects")},
        "listeners": None
        if reports is None
        else {
            "reporting": len(reports),
            "connected": sum(1 for report in reports if report["connected"]),
            "reconnects": sum(report["reconnects"] for report in reports),
        },
    }
