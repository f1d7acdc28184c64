"""Reads for alerts: the evaluation's inputs (enabled rules, their channels and stored states, each in one query
whatever the number of rules and accounts) and the querysets the API and admin list."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q, QuerySet

from monitoring.alerts import engine
from monitoring.alerts.models import AlertEvent, AlertRule, AlertState, NotificationChannel


@dataclass(frozen=True)
class RuleInfo:
    """What an event and its notification copy from the rule."""

    name: str
    severity: str
    scope: str
    figure: str
    comparator: str
    threshold: object


@dataclass(frozen=True)
class EvaluationInputs:
    rules: list[engine.Rule]
    info: dict[int, RuleInfo]
    channels: dict[int, list[tuple[int, str]]]  # rule id -> [(channel id, channel name)], enabled channels only
    states: list[engine.State]


RULE_COLUMNS = (
    "id",
    "scope",
    "figure",
    "comparator",
    "threshold",
    "for_seconds",
    "cooldown_seconds",
    "instance_id",
    "name",
    "severity",
)
STATE_COLUMNS = ("rule_id", "instance_id", "status", "value", "breach_since", "fired_at", "resolved_at", "id")


def evaluation_inputs() -> EvaluationInputs:
    """Enabled rules, the enabled channels of each, and the stored states of enabled rules: three queries."""
    rules, info = [], {}
    for (
        rule_id,
        scope,
        figure,
        comparator,
        threshold,
        for_s,
        cooldown_s,
        instance_id,
        name,
        severity,
    ) in AlertRule.objects.filter(enabled=True).values_list(*RULE_COLUMNS):
        scope, figure, comparator = engine.Scope(scope), engine.Figure(figure), engine.Comparator(comparator)
        rules.append(engine.Rule(rule_id, scope, figure, comparator, threshold, for_s, cooldown_s, instance_id))
        info[rule_id] = RuleInfo(name, severity, scope, figure, comparator, threshold)
    channels: dict[int, list[tuple[int, str]]] = defaultdict(list)
    links = AlertRule.channels.through.objects.filter(alertrule__enabled=True, notificationchannel__enabled=True)
    for rule_id, channel_id, channel_name in links.values_list(
        "alertrule_id", "notificationchannel_id", "notificationchannel__name"
    ):
        channels[rule_id].append((channel_id, channel_name))
    states = [
        engine.State(rule_id, instance_id, engine.Status(status), value, since, fired, resolved, state_id)
        for rule_id, instance_id, status, value, since, fired, resolved, state_id in (
            AlertState.objects.filter(rule__enabled=True).values_list(*STATE_COLUMNS)
        )
    ]
    return EvaluationInputs(rules, info, dict(channels), states)


def alert_rule_list(
    *, enabled: bool | None = None, figure: str | None = None, scope: str | None = None
) -> QuerySet[AlertRule]:
    """Rules by name, with their channel ids and how many of their pairs are pending or firing."""
    rules = AlertRule.objects.prefetch_related("channels").annotate(
        pending_count=Count("states", filter=Q(states__status=engine.Status.PENDING)),
        firing_count=Count("states", filter=Q(states__status=engine.Status.FIRING)),
    )
    if enabled is not None:
        rules = rules.filter(enabled=enabled)
    if figure:
        rules = rules.filter(figure=figure)
    if scope:
        rules = rules.filter(scope=scope)
    return rules.order_by("name", "id")


def alert_rule_get(*, rule_id: int) -> AlertRule | None:
    return alert_rule_list().filter(pk=rule_id).first()


def alert_states_of(*, rule_id: int, limit: int) -> list[AlertState]:
    """The stored (not ok) states of one rule, firing first, newest first."""
    return list(AlertState.objects.filter(rule_id=rule_id).order_by("status", "-changed_at", "id")[:limit])


def alert_event_list(
    *, rule_id: int | None = None, state: str | None = None, since: datetime | None = None
) -> QuerySet[AlertEvent]:
    """Firing and resolved events, newest first."""
    events = AlertEvent.objects.all()
    if rule_id is not None:
        events = events.filter(rule_id=rule_id)
    if state:
        events = events.filter(state=state)
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    return events.order_by("-occurred_at", "-id")


def channel_list() -> QuerySet[NotificationChannel]:
    """Channels by name; the encrypted columns are not loaded (nothing shown needs them)."""
    return NotificationChannel.objects.defer(*NotificationChannel.SECRET_FIELDS).order_by("name", "id")


def channel_get(*, channel_id: int) -> NotificationChannel | None:
    return channel_list().filter(pk=channel_id).first()
