"""Writes of alert rules: create, update and delete, each in one transaction with its audit record, and the demo
desk's two example rules.

What a rule may say is checked here (the API and admin only parse): a threshold inside its figure's range, the
account of an account rule, no per-account figure on the portfolio, existing channels. A disabled rule keeps no
state: disabling drops its pending and firing pairs (no notification), and enabling starts it afresh. Edits and
deletions wait for a running evaluation (its advisory lock), so a run never writes for a rule changed under it.
"""

from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from accounts.models import TradingInstance, User
from accounts.services import audit_entry_create
from monitoring.alerts import engine
from monitoring.alerts.errors import InvalidRule, RuleNotFound
from monitoring.alerts.models import MAX_DURATION_SECONDS, AlertRule, NotificationChannel
from monitoring.alerts.services.evaluation import evaluation_lock
from risk.models import Severity

RULE_FIELDS = (
    "name",
    "description",
    "scope",
    "instance_id",
    "figure",
    "comparator",
    "threshold",
    "for_seconds",
    "cooldown_seconds",
    "severity",
    "enabled",
)
EIGHT_PLACES = Decimal("0.00000001")


def rule_values(rule: AlertRule) -> dict[str, Any]:
    """The rule as the audit record keeps it (channels as sorted ids)."""
    values = {field: getattr(rule, field) for field in RULE_FIELDS}
    values["channel_ids"] = sorted(channel.pk for channel in rule.channels.all()) if rule.pk else []
    return values


def rule_problems(values: dict[str, Any]) -> dict[str, list[str]]:
    """What is wrong with a rule's values, by field (empty: a rule the engine can evaluate)."""
    problems: dict[str, list[str]] = {}
    figure, scope, threshold = values.get("figure"), values.get("scope"), values.get("threshold")
    if figure not in engine.Figure._value2member_map_:
        problems["figure"] = [f"Unknown figure; one of: {', '.join(engine.Figure)}."]
    if scope not in engine.Scope._value2member_map_:
        problems["scope"] = [f"Unknown scope; one of: {', '.join(engine.Scope)}."]
    if values.get("comparator") not in engine.Comparator._value2member_map_:
        problems["comparator"] = [f"Unknown comparator; one of: {', '.join(engine.Comparator)}."]
    if values.get("severity") not in Severity.values:
        problems["severity"] = [f"Unknown severity; one of: {', '.join(Severity.values)}."]
    if "figure" not in problems:
        problems.update(_threshold_problems(engine.Figure(figure), threshold))
        if scope == engine.Scope.PORTFOLIO and not engine.FIGURES[engine.Figure(figure)].portfolio:
            problems["figure"] = [f"{figure} is a per-account figure: use scope account or every_account."]
    if scope == engine.Scope.ACCOUNT and values.get("instance_id") is None:
        problems["account_id"] = ["An account rule names its account."]
    if scope != engine.Scope.ACCOUNT and values.get("instance_id") is not None:
        problems["account_id"] = ["Only an account rule names an account."]
    for field in ("for_seconds", "cooldown_seconds"):
        seconds = values.get(field)
        if not isinstance(seconds, int) or isinstance(seconds, bool) or not 0 <= seconds <= MAX_DURATION_SECONDS:
            problems[field] = [f"Whole seconds from 0 to {MAX_DURATION_SECONDS}."]
    return problems


def _threshold_problems(figure: engine.Figure, threshold: object) -> dict[str, list[str]]:
    spec = engine.FIGURES[figure]
    if not isinstance(threshold, Decimal) or not threshold.is_finite():
        return {"threshold": ["A finite decimal number."]}
    if not spec.minimum <= threshold <= spec.maximum:
        return {"threshold": [f"For {figure}: from {spec.minimum} to {spec.maximum}."]}
    if threshold != threshold.quantize(EIGHT_PLACES):  # inside the range: quantize cannot overflow
        return {"threshold": ["At most 8 decimal places."]}
    return {}


def alert_rule_check(values: dict[str, Any], channel_ids: list[int] | None) -> None:
    """Raise InvalidRule (fields say why) unless `values` (RULE_FIELDS) and the channels make a rule."""
    problems = rule_problems(values)
    instance_id = values.get("instance_id")
    known = instance_id is None or "account_id" in problems or TradingInstance.objects.filter(pk=instance_id).exists()
    if not known:
        problems["account_id"] = ["Unknown account."]
    if channel_ids:
        found = set(NotificationChannel.objects.filter(pk__in=channel_ids).values_list("pk", flat=True))
        missing = sorted(set(channel_ids) - found)
        if missing:
            problems["channel_ids"] = [f"Unknown channels: {missing}."]
    if problems:
        raise InvalidRule(fields=problems)


def _save(rule: AlertRule) -> None:
    try:
        with transaction.atomic():
            rule.save()
    except IntegrityError:
        raise InvalidRule(fields={"name": ["Another rule has this name."]}) from None


@transaction.atomic
def alert_rule_create(
    *,
    actor: User | None,
    name: str,
    scope: str,
    figure: str,
    comparator: str,
    threshold: Decimal,
    account_id: int | None = None,
    description: str = "",
    for_seconds: int = 0,
    cooldown_seconds: int = 0,
    severity: str = Severity.WARNING,
    enabled: bool = True,
    channel_ids: list[int] | None = None,
    reason: str = "",
) -> AlertRule:
    """A new rule, audited. Raises InvalidRule (fields say why) and writes nothing when it cannot be evaluated."""
    values = {
        "name": name,
        "description": description,
        "scope": scope,
        "instance_id": account_id,
        "figure": figure,
        "comparator": comparator,
        "threshold": threshold,
        "for_seconds": for_seconds,
        "cooldown_seconds": cooldown_seconds,
        "severity": severity,
        "enabled": enabled,
    }
    alert_rule_check(values, channel_ids)
    rule = AlertRule(**values | {"threshold": threshold.quantize(EIGHT_PLACES)})
    _save(rule)
    rule.channels.set(channel_ids or [])
    audit_entry_create(actor=actor, action="alert_rule.create", target=rule, after=rule_values(rule), reason=reason)
    return rule


@transaction.atomic
def alert_rule_update(*, rule_id: int, actor: User | None, reason: str = "", **changes: Any) -> AlertRule:
    """Change a rule (any of RULE_FIELDS as given to create, `account_id` for the account, `channel_ids`), audited
    with before and after. Disabling it drops its states. Raises RuleNotFound or InvalidRule (nothing written)."""
    evaluation_lock(wait=True)
    rule = AlertRule.objects.select_for_update().filter(pk=rule_id).first()
    if rule is None:
        raise RuleNotFound()
    before = rule_values(rule)
    if "account_id" in changes:
        changes["instance_id"] = changes.pop("account_id")
    channel_ids = changes.pop("channel_ids", None)
    unknown = sorted(set(changes) - set(RULE_FIELDS))
    if unknown:
        raise InvalidRule(fields={name: ["Not editable."] for name in unknown})
    for field, value in changes.items():
        setattr(rule, field, value)
    alert_rule_check({field: getattr(rule, field) for field in RULE_FIELDS}, channel_ids)
    rule.threshold = rule.threshold.quantize(EIGHT_PLACES)  # as stored, so the audit compares like with like
    _save(rule)
    if channel_ids is not None:
        rule.channels.set(channel_ids)
    if not rule.enabled:
        rule.states.all().delete()
    after = rule_values(rule)
    changed = [field for field in after if before[field] != after[field]]
    if changed:
        audit_entry_create(
            actor=actor,
            action="alert_rule.update",
            target=rule,
            before={field: before[field] for field in changed},
            after={field: after[field] for field in changed},
            reason=reason,
        )
    return rule


@transaction.atomic
def alert_rule_delete(*, rule_id: int, actor: User | None, reason: str = "") -> None:
    """Delete a rule and its states, audited. Its alert events stay (they copy the rule's name and condition)."""
    evaluation_lock(wait=True)
    rule = AlertRule.objects.select_for_update().filter(pk=rule_id).first()
    if rule is None:
        raise RuleNotFound()
    before = rule_values(rule)
    audit_entry_create(
        actor=actor,
        action="alert_rule.delete",
        target_type="monitoring.alertrule",
        target_id=str(rule.pk),
        before=before,
        reason=reason,
    )
    rule.delete()


DEMO_RULES = (
    {
        "name": "Demo: account drawdown past 10 %",
        "description": "Any account more than 10 % below its peak equity for a minute.",
        "scope": engine.Scope.EVERY_ACCOUNT,
        "figure": engine.Figure.DRAWDOWN_PCT,
        "comparator": engine.Comparator.GTE,
        "threshold": Decimal("0.10"),
        "for_seconds": 60,
        "cooldown_seconds": 900,
        "severity": Severity.WARNING,
    },
    {
        "name": "Demo: silent bot",
        "description": "A bot that has sent nothing for five minutes.",
        "scope": engine.Scope.EVERY_ACCOUNT,
        "figure": engine.Figure.HEARTBEAT_AGE_S,
        "comparator": engine.Comparator.GT,
        "threshold": Decimal(300),
        "for_seconds": 0,
        "cooldown_seconds": 900,
        "severity": Severity.WARNING,
    },
)


def alert_rules_ensure_demo() -> list[tuple[AlertRule, bool]]:
    """The demo desk's example rules (an account drawdown and a silent bot), created once each by name; an
    existing rule of that name, edited or not, is left as it is. Returns (rule, created) pairs."""
    results = []
    for values in DEMO_RULES:
        existing = AlertRule.objects.filter(name=values["name"]).first()
        if existing is not None:
            results.append((existing, False))
            continue
        try:
            results.append((alert_rule_create(actor=None, reason="demo desk", **values), True))
        except InvalidRule:  # created meanwhile by a concurrent call (the name is unique)
            results.append((AlertRule.objects.get(name=values["name"]), False))
    return results
