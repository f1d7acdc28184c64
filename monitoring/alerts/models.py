"""Alert data: rules, the state of each rule-and-scope pair that is not ok, the append-only alert events, the
notification channels (secrets encrypted at rest) and every delivery with each of its attempts.

Models are declarative; writes go through monitoring.alerts.services (audited) and the evaluation service.
Registered under the monitoring app (imported by monitoring.models).
"""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from accounts.crypto import EncryptedTextField
from monitoring.alerts.engine import Comparator, EventKind, Figure, Scope, Status
from nija.models import TimeStampedModel
from risk.models import TOTAL, Severity

MAX_DURATION_SECONDS = 7 * 86400


def _values(enum: type) -> list[str]:
    return [member.value for member in enum]


def _choices(enum: type) -> list[tuple[str, str]]:
    return [(member.value, member.value.replace("_", " ")) for member in enum]


class ChannelKind(models.TextChoices):
    WEBHOOK = "webhook", "Signed webhook"
    APPRISE = "apprise", "Apprise URL (chat, mail)"


class NotificationChannel(TimeStampedModel):
    """Where notifications go. A webhook has a URL (shown) and a signing secret (never shown again); an Apprise
    channel has one Apprise URL, which carries its service's credentials, so it is a secret too."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    webhook_url = models.CharField(max_length=2000, blank=True, default="")
    secret = EncryptedTextField(null=True, blank=True)
    apprise_url = EncryptedTextField(null=True, blank=True)
    # What may be shown of the Apprise URL (its scheme), kept beside the ciphertext.
    target_hint = models.CharField(max_length=120, blank=True, default="")
    enabled = models.BooleanField(default=True)

    SECRET_FIELDS = ("secret", "apprise_url")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=ChannelKind.values), name="alertchannel_kind_valid"),
            models.CheckConstraint(
                condition=(
                    Q(kind=ChannelKind.WEBHOOK, secret__isnull=False, apprise_url__isnull=True) & ~Q(webhook_url="")
                )
                | Q(kind=ChannelKind.APPRISE, apprise_url__isnull=False, secret__isnull=True, webhook_url=""),
                name="alertchannel_target_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def __repr__(self) -> str:
        return f"<NotificationChannel id={self.pk} name={self.name!r} kind={self.kind}>"


class AlertRule(TimeStampedModel):
    """One figure of one scope compared with a threshold, held for `for_seconds`, at most one firing per
    cooldown; notifies its channels on firing and on resolution."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    scope = models.CharField(max_length=16, choices=_choices(Scope))
    instance = models.ForeignKey(
        "accounts.TradingInstance", on_delete=models.PROTECT, null=True, blank=True, related_name="alert_rules"
    )
    figure = models.CharField(max_length=32, choices=_choices(Figure))
    comparator = models.CharField(max_length=8, choices=_choices(Comparator))
    threshold = models.DecimalField(**TOTAL)
    for_seconds = models.PositiveIntegerField(default=0)
    cooldown_seconds = models.PositiveIntegerField(default=0)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    enabled = models.BooleanField(default=True)
    channels = models.ManyToManyField(NotificationChannel, blank=True, related_name="rules")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(scope__in=_values(Scope)), name="alertrule_scope_valid"),
            models.CheckConstraint(condition=Q(figure__in=_values(Figure)), name="alertrule_figure_valid"),
            models.CheckConstraint(condition=Q(comparator__in=_values(Comparator)), name="alertrule_comparator_valid"),
            models.CheckConstraint(condition=Q(severity__in=Severity.values), name="alertrule_severity_valid"),
            models.CheckConstraint(
                condition=Q(scope=Scope.ACCOUNT, instance__isnull=False)
                | (~Q(scope=Scope.ACCOUNT) & Q(instance__isnull=True)),
                name="alertrule_instance_iff_account_scope",
            ),
            models.CheckConstraint(
                condition=Q(for_seconds__lte=MAX_DURATION_SECONDS, cooldown_seconds__lte=MAX_DURATION_SECONDS),
                name="alertrule_durations_bounded",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AlertState(models.Model):
    """A rule-and-scope pair that is not ok (pending, firing, or resolved inside its cooldown). Instance null is
    the portfolio. A pair back to ok has no row."""

    # No index of its own: the unique (rule, instance) index leads with it (a second one only slowed every insert
    # of an alert storm's states).
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="states", db_index=False)
    instance = models.ForeignKey(
        "accounts.TradingInstance", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=16, choices=_choices(Status))
    value = models.DecimalField(**TOTAL, null=True, blank=True)
    breach_since = models.DateTimeField(null=True, blank=True)
    fired_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "instance"], nulls_distinct=False, name="alertstate_one_per_scope"),
            models.CheckConstraint(condition=Q(status__in=_values(Status)), name="alertstate_status_valid"),
        ]
        indexes = [models.Index(fields=["status"], name="alertstate_status_idx")]

    def __str__(self) -> str:
        scope = f"account {self.instance_id}" if self.instance_id else "portfolio"
        return f"{self.rule_id} / {scope}: {self.status}"


class AlertEvent(models.Model):
    """A firing or a resolution, append-only (a PostgreSQL trigger refuses UPDATE and DELETE). It copies what the
    rule said at the time and keeps the rule's id without a foreign key: history outlives a deleted rule."""

    rule_id = models.BigIntegerField()
    rule_name = models.CharField(max_length=100)
    scope = models.CharField(max_length=16, choices=_choices(Scope))
    instance = models.ForeignKey(
        "accounts.TradingInstance", on_delete=models.PROTECT, null=True, blank=True, related_name="alert_events"
    )
    figure = models.CharField(max_length=32, choices=_choices(Figure))
    comparator = models.CharField(max_length=8, choices=_choices(Comparator))
    threshold = models.DecimalField(**TOTAL)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    state = models.CharField(max_length=16, choices=_choices(EventKind))
    value = models.DecimalField(**TOTAL, null=True, blank=True)
    occurred_at = models.DateTimeField()
    fired_at = models.DateTimeField()  # the firing of the episode (its own time for a firing)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["-occurred_at", "-id"], name="alertevent_occurred"),
            models.Index(fields=["rule_id", "-occurred_at"], name="alertevent_rule_occurred"),
            models.Index(fields=["state", "-occurred_at"], name="alertevent_state_occurred"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=_values(EventKind)), name="alertevent_state_valid"),
        ]

    def __str__(self) -> str:
        scope = f"account {self.instance_id}" if self.instance_id else self.scope
        return f"{self.rule_name} {self.state} ({scope})"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Waiting to retry"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    REFUSED = "refused", "Refused (target not allowed)"


FINAL_DELIVERY_STATUSES = (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.REFUSED)


class AlertDelivery(TimeStampedModel):
    """One notification (the events of one rule raised by one evaluation, of one kind) to one channel. The
    payload is fixed at creation, so every attempt sends the same message under the same webhook id."""

    channel = models.ForeignKey(
        NotificationChannel, on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries"
    )
    channel_name = models.CharField(max_length=100)
    rule_id = models.BigIntegerField()
    kind = models.CharField(max_length=16, choices=_choices(EventKind))
    event_ids = ArrayField(models.BigIntegerField())
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "alert deliveries"
        indexes = [models.Index(fields=["status", "-created_at"], name="alertdelivery_status_created")]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="alertdelivery_status_valid"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} to {self.channel_name}: {self.status}"

    @property
    def message_id(self) -> str:
        """The Standard Webhooks `webhook-id`: the same on every attempt, so a receiver can drop duplicates."""
        return f"nija_alert_{self.pk}"


class AttemptOutcome(models.TextChoices):
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (retried while attempts are left)"
    REJECTED = "rejected", "Rejected by the receiver (not retried)"
    REFUSED = "refused", "Refused (target not allowed)"
    INTERRUPTED = "interrupted", "Interrupted (outcome unknown)"


class AlertDeliveryAttempt(models.Model):
    """One try at a delivery, claimed (row `sending`) under the delivery's row lock before anything is sent."""

    delivery = models.ForeignKey(AlertDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices, default=AttemptOutcome.SENDING)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["delivery_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="alertattempt_one_per_number"),
            models.CheckConstraint(condition=Q(outcome__in=AttemptOutcome.values), name="alertattempt_outcome_valid"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}: {self.outcome}"
