"""The one publisher of live events (DESIGN.md section 3): every service calls it after commit.

Events go through django-eventstream, which publishes through one Redis pub/sub channel when
`EVENTSTREAM_REDIS` is set, so a listener in any process (the SSE server) receives what a web worker or a
Celery task sent. Channels: `dashboard` (operators) and `account-<id>` (that account's bot). Event types:
`metrics`, `risk_event`, `position`, `state`, `alert`.

A publish failure never undoes the committed change it reports (the database is the record; clients re-read
it); it is logged with the event and counted, never silently dropped.
"""

import logging
import threading
from collections.abc import Mapping
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

DASHBOARD_CHANNEL = "dashboard"
EVENT_TYPES = frozenset({"metrics", "risk_event", "position", "state", "alert"})

_failures = 0
_failures_lock = threading.Lock()


def account_channel(account_id: int) -> str:
    return f"account-{account_id}"


def channels_for(account_id: int | None) -> list[str]:
    """The dashboard always; the account's own channel when the event concerns one account."""
    return [DASHBOARD_CHANNEL] if account_id is None else [DASHBOARD_CHANNEL, account_channel(account_id)]


def publish(*, event_type: str, data: Mapping[str, Any], account_id: int | None = None) -> bool:
    """Send one event now to its channels; False (logged, counted) when it could not be sent."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    from django_eventstream import send_event  # imported late: it reads settings at import time

    try:
        for channel in channels_for(account_id):
            send_event(channel, event_type, dict(data))
    except Exception:  # Redis down or a listener error: report, never raise into the caller
        _count_failure()
        logger.warning("event_publish_failed", exc_info=True, extra={"event_type": event_type})
        return False
    return True


def publish_on_commit(*, event_type: str, data: Mapping[str, Any], account_id: int | None = None) -> None:
    """Publish once the surrounding transaction commits (immediately outside one); nothing if it rolls back."""
    payload = dict(data)
    transaction.on_commit(lambda: publish(event_type=event_type, data=payload, account_id=account_id))


def publish_failures() -> int:
    """How many publishes failed in this process (for health reporting)."""
    return _failures


def _count_failure() -> None:
    global _failures
    with _failures_lock:
        _failures += 1
