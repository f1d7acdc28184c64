"""Evaluating every enabled alert rule against the latest figures, in a fixed number of queries.

`alerts_evaluate` loads the rules, their channels and the stored states (three queries whatever the number of
rules and accounts), lets the engine decide, then writes in one transaction: new, changed and dropped states
(one statement each), the alert events (one), and one delivery per notification and channel (one). A
notification carries every event of one rule and kind raised by the run, so an every-account rule tripped by a
hundred accounts at once sends one message per channel, not a hundred. After commit, each delivery is enqueued
as its own Celery task and one `alert` event per notification goes on the dashboard stream.

Two runs never interleave: the run takes a transaction-scoped advisory lock and a run that cannot have it at once
does nothing (the other run is doing the same work, or a rule is being edited: the next run catches up).
"""

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from django.db import DatabaseError, connection, transaction

from monitoring.alerts import engine
from monitoring.alerts.figures import alert_figures
from monitoring.alerts.models import AlertDelivery, AlertEvent, AlertRule, AlertState
from monitoring.alerts.selectors import EvaluationInputs, RuleInfo, evaluation_inputs
from monitoring.alerts.services.delivery import deliveries_enqueue_on_commit
from nija.events import publish_on_commit
from nija.metrics import ALERT_EVENTS, child

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


def alerts_run(*, now: datetime) -> dict[str, Any]:
    """The aggregation run's alert step: every enabled rule evaluated on the desk's figures at `now` (read only when
    a rule is enabled), and what it did for the snapshot. An error is logged and reported, never raised: the desk's
    figures must still be refreshed, and the next run evaluates again."""
    try:
        if not AlertRule.objects.filter(enabled=True).exists():
            return {"evaluated": True, "error": None, "firing": 0, "raised": 0, "resolved": 0, "deliveries": 0}
        summary = alerts_evaluate(figures=alert_figures(now=now), now=now)
        firing = AlertState.objects.filter(status=engine.Status.FIRING).count()
    except DatabaseError as exc:  # a lock or statement timeout, the database gone
        logger.exception("alerts_evaluation_failed")
        return {"evaluated": False, "error": type(exc).__name__, "firing": None, "raised": 0, "resolved": 0}
    return {
        "evaluated": not summary.skipped,
        "error": None,
        "firing": firing,
        "raised": summary.firing,
        "resolved": summary.resolved,
        "deliveries": summary.deliveries,
    }


@transaction.atomic
def alerts_evaluate(*, figures: engine.Figures, now: datetime) -> EvaluationSummary:
    """Evaluate every enabled rule at `now` and write what changed (see the module docstring)."""
    if not evaluation_lock(wait=False):
        logger.info("alerts_evaluate_skipped", reason="another evaluation holds the lock")
        return EvaluationSummary(skipped=True)
    inputs = evaluation_inputs()
    result = engine.evaluate(inputs.rules, inputs.states, figures, now)
    _states_write(result, now=now)
    events = _events_create(result.events, inputs.info)
    deliveries = _notifications_create(events, inputs)
    deliveries_enqueue_on_commit([delivery.pk for delivery in deliveries])
    _count_on_commit(events, inputs.info)
    summary = EvaluationSummary(
        rules=len(inputs.rules),
        states_created=len(result.created),
        states_updated=len(result.updated),
        states_deleted=len(result.deleted),
        firing=sum(stored.event.kind is engine.EventKind.FIRING for stored in events),
        resolved=sum(stored.event.kind is engine.EventKind.RESOLVED for stored in events),
        deliveries=len(deliveries),
    )
    if events:
        logger.info("alerts_evaluated", **summary.__dict__)
    return summary


def _count_on_commit(events: list["StoredEvent"], info: dict[int, RuleInfo]) -> None:
    """Prometheus: firings and resolutions by state and severity, once they are committed."""
    counts = Counter((str(stored.event.kind), info[stored.event.rule_id].severity) for stored in events)
    if counts:
        transaction.on_commit(lambda: [child(ALERT_EVENTS, *labels).inc(count) for labels, count in counts.items()])


def evaluation_lock(*, wait: bool) -> bool:
    """The evaluation's advisory lock, held until the transaction ends. Rule edits wait for it (`wait=True`), so
    a run never writes a state or an event for a rule deleted or disabled under it; a run does not wait for it."""
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [EVALUATION_LOCK_KEY])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [EVALUATION_LOCK_KEY])
        return bool(cursor.fetchone()[0])


# ---------------------------------------------------------------------------------------------- states
# Rows go in and change through unnest() over one array per column: one statement whatever their number, without
# building a model instance per row (an alert storm over 10,000 accounts writes 10,000 states and events), and
# without bulk_update's CASE per row, whose cost grows with the square of the rows. Only the models' table names
# are formatted into the SQL; every value is a parameter.
STATES = AlertState._meta.db_table
INSERT_STATES = f"""
INSERT INTO {STATES} (rule_id, instance_id, status, value, breach_since, fired_at, resolved_at, changed_at)
SELECT rule_id, instance_id, status, value, breach_since, fired_at, resolved_at, %s
FROM unnest(%s::bigint[], %s::bigint[], %s::varchar[], %s::numeric[], %s::timestamptz[], %s::timestamptz[],
            %s::timestamptz[]) AS new(rule_id, instance_id, status, value, breach_since, fired_at, resolved_at)
"""  # noqa: S608
UPDATE_STATES = f"""
UPDATE {STATES} AS state
SET status = changed.status, value = changed.value, breach_since = changed.breach_since,
    fired_at = changed.fired_at, resolved_at = changed.resolved_at, changed_at = %s
FROM unnest(%s::bigint[], %s::varchar[], %s::numeric[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[])
    AS changed(id, status, value, breach_since, fired_at, resolved_at)
WHERE state.id = changed.id
"""  # noqa: S608
INSERT_EVENTS = f"""
INSERT INTO {AlertEvent._meta.db_table} (rule_id, rule_name, scope, instance_id, figure, comparator, threshold,
    severity, state, value, occurred_at, fired_at, created_at)
SELECT event.*, now()
FROM unnest(%s::bigint[], %s::varchar[], %s::varchar[], %s::bigint[], %s::varchar[], %s::varchar[], %s::numeric[],
            %s::varchar[], %s::varchar[], %s::numeric[], %s::timestamptz[], %s::timestamptz[]) AS event
RETURNING id, rule_id, instance_id
"""  # noqa: S608


def _columns(rows: list[tuple]) -> list[list[Any]]:
    """Rows as one list per column (the arrays unnest() reads)."""
    return [list(column) for column in zip(*rows, strict=True)]


def _states_write(result: engine.Evaluation, *, now: datetime) -> None:
    with connection.cursor() as cursor:
        if result.created:
            rows = [
                (s.rule_id, s.account_id, str(s.status), s.value, s.breach_since, s.fired_at, s.resolved_at)
                for s in result.created
            ]
            cursor.execute(INSERT_STATES, [now, *_columns(rows)])
        if result.updated:
            rows = [(s.id, str(s.status), s.value, s.breach_since, s.fired_at, s.resolved_at) for s in result.updated]
            cursor.execute(UPDATE_STATES, [now, *_columns(rows)])
    if result.deleted:
        AlertState.objects.filter(pk__in=[state.id for state in result.deleted]).delete()


# ---------------------------------------------------------------------------------------------- events
@dataclass(frozen=True)
class StoredEvent:
    """An event the run raised, with the id its row got."""

    pk: int
    event: engine.Event


def _events_create(drafts: list[engine.Event], info: dict[int, RuleInfo]) -> list[StoredEvent]:
    """Insert every event in one statement; ids are matched back by (rule, scope), unique within a run."""
    if not drafts:
        return []
    rows = []
    for draft in drafts:
        rule = info[draft.rule_id]
        scope, figure, comparator, kind = str(rule.scope), str(rule.figure), str(rule.comparator), str(draft.kind)
        rows.append((draft.rule_id, rule.name, scope, draft.account_id, figure, comparator, rule.threshold))
        rows[-1] += (rule.severity, kind, draft.value, draft.at, draft.fired_at)
    with connection.cursor() as cursor:
        cursor.execute(INSERT_EVENTS, _columns(rows))
        ids = {(rule_id, instance_id): pk for pk, rule_id, instance_id in cursor.fetchall()}
    return [StoredEvent(ids[(draft.rule_id, draft.account_id)], draft) for draft in drafts]


def _notifications_create(events: list[StoredEvent], inputs: EvaluationInputs) -> list[AlertDelivery]:
    """One notification per rule and kind; one delivery of it per enabled channel; one stream event each."""
    grouped: dict[tuple[int, str], list[StoredEvent]] = defaultdict(list)
    for stored in events:
        grouped[(stored.event.rule_id, stored.event.kind)].append(stored)
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
                event_ids=[stored.pk for stored in group],
                payload=payload,
            )
            for channel_id, channel_name in inputs.channels.get(rule_id, ())
        )
    return AlertDelivery.objects.bulk_create(deliveries) if deliveries else []


def _text(value: object) -> str | None:
    return None if value is None else format(value, "f")


def notification_data(rule_id: int, info: RuleInfo, kind: str, events: list[StoredEvent], limit: int) -> dict:
    """The notification's `data`: the rule as it was, and the first `limit` alerts (all are counted)."""
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
                "event_id": stored.pk,
                "account_id": stored.event.account_id,
                "value": _text(stored.event.value),
                "occurred_at": stored.event.at.isoformat(),
                "fired_at": stored.event.fired_at.isoformat(),
            }
            for stored in events[:limit]
        ],
        "truncated": len(events) > limit,
    }


def notification_payload(rule_id: int, info: RuleInfo, kind: str, events: list[StoredEvent]) -> dict[str, Any]:
    """The webhook body (Standard Webhooks' recommended `type`, `timestamp`, `data` envelope)."""
    return {
        "type": f"alert.{kind}",
        "timestamp": events[0].event.at.isoformat(),
        "data": notification_data(rule_id, info, kind, events, PAYLOAD_ALERTS),
    }
