"""Evaluating every enabled alert rule against the latest figures, in a fixed number of queries.

`alerts_evaluate` loads the rules, their channels and the stored states (three queries whatever the number of
rules and accounts), lets the engine decide, then writes in one transaction: new, changed and dropped states
(one statement each), the alert events (one), and one delivery per notification and channel (one). A
notification carries every event of one rule and kind raised by the run, so an every-account rule tripped by a
hundred accounts at once sends one message per channel, not a hundred. After commit, each delivery is enqueued
as its own Celery task and one `alert` event per notification goes on the dashboard stream.

Two runs never interleave: the run takes a transaction-scoped advisory lock and a run that cannot have it at once
does nothing (the other run is doing the same work).
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from django.db import connection, transaction

from monitoring.alerts import engine
from monitoring.alerts.models import AlertDelivery, AlertEvent, AlertState
from monitoring.alerts.selectors import EvaluationInputs, RuleInfo, evaluation_inputs
from monitoring.alerts.services.delivery import deliveries_enqueue_on_commit
from nija.events import publish_on_commit

logger = structlog.get_logger(__name__)

EVALUATION_LOCK_KEY = 0x6E696A61_616C7274  # "nijaalrt": one advisory lock key for every evaluation
PAYLOAD_ALERTS = 100  # alerts listed in one notification (the rest are counted)
STREAM_ALERTS = 20  # alerts listed in one `alert` stream event


@dataclass(frozen=True)
class EvaluationSummary:
    """What one run did (counts), for the aggregation run's log and metrics."""

    skipped: bool = False
    rules: int = 0
    states_created: int = 0
    states_updated: int = 0
    states_deleted: int = 0
    firing: int = 0
    resolved: int = 0
    deliveries: int = 0


@transaction.atomic
def alerts_evaluate(*, figures: engine.Figures, now: datetime) -> EvaluationSummary:
    """Evaluate every enabled rule at `now` and write what changed (see the module docstring)."""
    if not _evaluation_lock():
        logger.info("alerts_evaluate_skipped", reason="another evaluation holds the lock")
        return EvaluationSummary(skipped=True)
    inputs = evaluation_inputs()
    result = engine.evaluate(inputs.rules, inputs.states, figures, now)
    _states_write(result, now=now)
    events = _events_create(result.events, inputs.info)
    deliveries = _notifications_create(events, inputs)
    deliveries_enqueue_on_commit([delivery.pk for delivery in deliveries])
    summary = EvaluationSummary(
        rules=len(inputs.rules),
        states_created=len(result.created),
        states_updated=len(result.updated),
        states_deleted=len(result.deleted),
        firing=sum(event.state == engine.EventKind.FIRING for event in events),
        resolved=sum(event.state == engine.EventKind.RESOLVED for event in events),
        deliveries=len(deliveries),
    )
    if events:
        logger.info("alerts_evaluated", **summary.__dict__)
    return summary


def _evaluation_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [EVALUATION_LOCK_KEY])
        return bool(cursor.fetchone()[0])


# ---------------------------------------------------------------------------------------------- states
def _states_write(result: engine.Evaluation, *, now: datetime) -> None:
    if result.created:
        AlertState.objects.bulk_create([_state_row(state, now) for state in result.created])
    if result.updated:
        _states_update(result.updated, now=now)
    if result.deleted:
        AlertState.objects.filter(pk__in=[state.id for state in result.deleted]).delete()


def _state_row(state: engine.State, now: datetime) -> AlertState:
    return AlertState(
        rule_id=state.rule_id,
        instance_id=state.account_id,
        status=state.status,
        value=state.value,
        breach_since=state.breach_since,
        fired_at=state.fired_at,
        resolved_at=state.resolved_at,
        changed_at=now,
    )


# Only the model's table name is formatted in; every value is a parameter.
UPDATE_STATES = f"""
UPDATE {AlertState._meta.db_table} AS state
SET status = changed.status, value = changed.value, breach_since = changed.breach_since,
    fired_at = changed.fired_at, resolved_at = changed.resolved_at, changed_at = %s
FROM unnest(%s::bigint[], %s::varchar[], %s::numeric[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[])
    AS changed(id, status, value, breach_since, fired_at, resolved_at)
WHERE state.id = changed.id
"""  # noqa: S608


def _states_update(states: list[engine.State], *, now: datetime) -> None:
    """Every changed state in one statement (a CASE per row, as bulk_update writes, grows with the square)."""
    columns: list[list[Any]] = [[], [], [], [], [], []]
    for state in states:
        row = (state.id, str(state.status), state.value, state.breach_since, state.fired_at, state.resolved_at)
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    with connection.cursor() as cursor:
        cursor.execute(UPDATE_STATES, [now, *columns])


# ---------------------------------------------------------------------------------------------- events
def _events_create(drafts: list[engine.Event], info: dict[int, RuleInfo]) -> list[AlertEvent]:
    rows = [
        AlertEvent(
            rule_id=draft.rule_id,
            rule_name=info[draft.rule_id].name,
            scope=info[draft.rule_id].scope,
            instance_id=draft.account_id,
            figure=info[draft.rule_id].figure,
            comparator=info[draft.rule_id].comparator,
            threshold=info[draft.rule_id].threshold,
            severity=info[draft.rule_id].severity,
            state=draft.kind,
            value=draft.value,
            occurred_at=draft.at,
            fired_at=draft.fired_at,
        )
        for draft in drafts
    ]
    return AlertEvent.objects.bulk_create(rows) if rows else []


def _notifications_create(events: list[AlertEvent], inputs: EvaluationInputs) -> list[AlertDelivery]:
    """One notification per rule and kind; one delivery of it per enabled channel; one stream event each."""
    grouped: dict[tuple[int, str], list[AlertEvent]] = defaultdict(list)
    for event in events:
        grouped[(event.rule_id, event.state)].append(event)
    deliveries = []
    for (rule_id, kind), group in grouped.items():
        info = inputs.info[rule_id]
        publish_on_commit(event_type="alert", data=notification_data(rule_id, info, kind, group, STREAM_ALERTS))
        payload = notification_payload(rule_id, info, kind, group)
        deliveries.extend(
            AlertDelivery(
                channel_id=channel_id,
                channel_name=channel_name,
                rule_id=rule_id,
                kind=kind,
                event_ids=[event.pk for event in group],
                payload=payload,
            )
            for channel_id, channel_name in inputs.channels.get(rule_id, ())
        )
    return AlertDelivery.objects.bulk_create(deliveries) if deliveries else []


def _text(value: object) -> str | None:
    return None if value is None else format(value, "f")


def notification_data(
    rule_id: int, info: RuleInfo, kind: str, events: Iterable[AlertEvent], limit: int
) -> dict[str, Any]:
    """The notification's `data`: the rule as it was, and the first `limit` alerts (all are counted)."""
    events = list(events)
    return {
        "rule": {
            "id": rule_id,
            "name": info.name,
            "scope": info.scope,
            "figure": info.figure,
            "comparator": info.comparator,
            "threshold": _text(info.threshold),
            "severity": info.severity,
        },
        "state": kind,
        "count": len(events),
        "alerts": [
            {
                "event_id": event.pk,
                "account_id": event.instance_id,
                "value": _text(event.value),
                "occurred_at": event.occurred_at.isoformat(),
                "fired_at": event.fired_at.isoformat(),
            }
            for event in events[:limit]
        ],
        "truncated": len(events) > limit,
    }


def notification_payload(rule_id: int, info: RuleInfo, kind: str, events: list[AlertEvent]) -> dict[str, Any]:
    """The webhook body (Standard Webhooks' recommended `type`, `timestamp`, `data` envelope)."""
    return {
        "type": f"alert.{kind}",
        "timestamp": events[0].occurred_at.isoformat(),
        "data": notification_data(rule_id, info, kind, events, PAYLOAD_ALERTS),
    }
