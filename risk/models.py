"""Risk data: portfolio and symbol/group exposure counters, limits, the kill switch, risk events, breach latches.

Counters on `Portfolio`, `SymbolExposure`, `CorrelationGroup` and the account row (`TradingInstance.exposure`,
`position_count`) are the check path's source of truth: they move only inside risk services, under row locks,
by relative SQL updates (one statement adds a delta to every counter of the locked scope:
`risk.services.exposure.counters_move`), so a check never SUMs positions. The aggregation task verifies them
against the positions.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from nija.models import TimeStampedModel
from risk.defaults import PORTFOLIO_ID

MONEY = {"max_digits": 18, "decimal_places": 8}
# Sums over every account (portfolio equity, exposure per portfolio/symbol/group) outgrow one account's
# NUMERIC(18,8): 10,000 accounts of 1,000,000 already reach 1e10. Ten more integer digits.
TOTAL = {"max_digits": 28, "decimal_places": 8}
PCT = {"max_digits": 10, "decimal_places": 6}
ZERO = Decimal("0")


class Portfolio(TimeStampedModel):
    """The one portfolio row (pk 1): the first lock every exposure-moving transaction takes."""

    SINGLETON_ID = PORTFOLIO_ID

    exposure = models.DecimalField(**TOTAL, default=ZERO)
    position_count = models.IntegerField(default=0)
    equity = models.DecimalField(**TOTAL, default=ZERO)
    day_start_equity = models.DecimalField(**TOTAL, default=ZERO)
    # The UTC day the start-of-day equities belong to: the first check, approval or equity report of a new day
    # rolls every account and the portfolio at once (risk.services.day.trading_day_roll).
    day_start_date = models.DateField(null=True, blank=True)
    counters_verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [
            ("approve_position", "Can approve or reject positions waiting for approval"),
            ("halt_trading", "Can halt, set reduce-only and resume trading"),
            ("manage_equity", "Can confirm held equity increases and record deposits and withdrawals"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="portfolio_singleton"),
            models.CheckConstraint(condition=Q(exposure__gte=0), name="portfolio_exposure_non_negative"),
            models.CheckConstraint(condition=Q(position_count__gte=0), name="portfolio_position_count_non_negative"),
        ]

    def __str__(self) -> str:
        return "Portfolio"


class SymbolExposure(models.Model):
    """Portfolio exposure per symbol (one row per canonical symbol, created on first use)."""

    symbol = models.CharField(max_length=32, primary_key=True)
    exposure = models.DecimalField(**TOTAL, default=ZERO)
    position_count = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(exposure__gte=0), name="symbol_exposure_non_negative"),
            models.CheckConstraint(condition=Q(position_count__gte=0), name="symbol_position_count_non_negative"),
        ]

    def __str__(self) -> str:
        return self.symbol


class CorrelationGroup(TimeStampedModel):
    """Symbols that move together, with one exposure limit (a fraction of portfolio equity) for all of them."""

    name = models.CharField(max_length=64, unique=True)
    limit_pct = models.DecimalField(**PCT)
    exposure = models.DecimalField(**TOTAL, default=ZERO)
    description = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(limit_pct__gt=0) & Q(limit_pct__lte=10), name="group_limit_pct_range"),
            models.CheckConstraint(condition=Q(exposure__gte=0), name="group_exposure_non_negative"),
        ]

    def __str__(self) -> str:
        return self.name


class CorrelationGroupMember(models.Model):
    """A symbol's membership: each symbol belongs to at most one group."""

    group = models.ForeignKey(CorrelationGroup, on_delete=models.CASCADE, related_name="members")
    symbol = models.CharField(max_length=32, unique=True)

    def __str__(self) -> str:
        return f"{self.symbol} in {self.group_id}"


class RiskLimits(TimeStampedModel):
    """Percent limits: the portfolio default (instance null, every field set) or one account's overrides
    (instance set; a null field falls back to the default)."""

    instance = models.OneToOneField(
        "accounts.TradingInstance", on_delete=models.CASCADE, null=True, blank=True, related_name="risk_limits"
    )
    max_portfolio_exposure_pct = models.DecimalField(**PCT, null=True, blank=True)
    max_daily_loss_pct = models.DecimalField(**PCT, null=True, blank=True)
    max_total_positions = models.PositiveIntegerField(null=True, blank=True)
    max_account_exposure_pct = models.DecimalField(**PCT, null=True, blank=True)
    max_position_pct = models.DecimalField(**PCT, null=True, blank=True)
    max_symbol_exposure_pct = models.DecimalField(**PCT, null=True, blank=True)
    max_drawdown_pct = models.DecimalField(**PCT, null=True, blank=True)
    emergency_daily_loss_pct = models.DecimalField(**PCT, null=True, blank=True)
    emergency_drawdown_pct = models.DecimalField(**PCT, null=True, blank=True)
    approval_threshold = models.DecimalField(**MONEY, null=True, blank=True)
    reservation_ttl_seconds = models.PositiveIntegerField(null=True, blank=True)
    approval_ttl_seconds = models.PositiveIntegerField(null=True, blank=True)
    equity_max_age_seconds = models.PositiveIntegerField(null=True, blank=True)
    max_equity_increase_pct = models.DecimalField(
        **PCT,
        null=True,
        blank=True,
        help_text=(
            "An equity report more than this fraction above the account's last accepted figure, or above its "
            "start of the UTC day (or a figure confirmed today), is held until an operator confirms it (a first "
            "report: above its starting balance)."
        ),
    )
    heartbeat_timeout_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=(
            "A bot with no authenticated request for this long is silent: the heartbeat watchdog raises one warning "
            "event, shows the account as stale and releases its unfilled reservations (cancel-on-disconnect). Its "
            "next request brings it back."
        ),
    )

    LIMIT_FIELDS = (
        "max_portfolio_exposure_pct",
        "max_daily_loss_pct",
        "max_total_positions",
        "max_account_exposure_pct",
        "max_position_pct",
        "max_symbol_exposure_pct",
        "max_drawdown_pct",
        "emergency_daily_loss_pct",
        "emergency_drawdown_pct",
        "approval_threshold",
        "reservation_ttl_seconds",
        "approval_ttl_seconds",
        "equity_max_age_seconds",
        "max_equity_increase_pct",
        "heartbeat_timeout_seconds",
    )

    class Meta:
        verbose_name_plural = "risk limits"
        constraints = [
            models.UniqueConstraint(
                fields=["instance"], name="one_portfolio_default_limits", condition=Q(instance__isnull=True)
            ),
            models.CheckConstraint(
                condition=Q(instance__isnull=False)
                | Q(
                    max_portfolio_exposure_pct__isnull=False,
                    max_daily_loss_pct__isnull=False,
                    max_total_positions__isnull=False,
                    max_account_exposure_pct__isnull=False,
                    max_position_pct__isnull=False,
                    max_symbol_exposure_pct__isnull=False,
                    max_drawdown_pct__isnull=False,
                    emergency_daily_loss_pct__isnull=False,
                    emergency_drawdown_pct__isnull=False,
                    approval_threshold__isnull=False,
                    reservation_ttl_seconds__isnull=False,
                    approval_ttl_seconds__isnull=False,
                    equity_max_age_seconds__isnull=False,
                    max_equity_increase_pct__isnull=False,
                    heartbeat_timeout_seconds__isnull=False,
                ),
                name="portfolio_default_limits_complete",
            ),
            *[
                models.CheckConstraint(
                    condition=Q(**{f"{name}__isnull": True}) | Q(**{f"{name}__gte": 0, f"{name}__lte": 10}),
                    name=f"limits_{name}_range",
                )
                for name in (
                    "max_portfolio_exposure_pct",
                    "max_daily_loss_pct",
                    "max_account_exposure_pct",
                    "max_position_pct",
                    "max_symbol_exposure_pct",
                    "max_drawdown_pct",
                    "emergency_daily_loss_pct",
                    "emergency_drawdown_pct",
                    "max_equity_increase_pct",
                )
            ],
            models.CheckConstraint(
                condition=Q(approval_threshold__isnull=True) | Q(approval_threshold__gt=0),
                name="limits_approval_threshold_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"Limits for {self.instance}" if self.instance_id else "Portfolio default limits"


class TradingStateValue(models.TextChoices):
    ACTIVE = "active", "ACTIVE"
    REDUCING = "reducing", "REDUCING (reduce-only)"
    HALTED = "halted", "HALTED"


class TradingState(models.Model):
    """The kill switch: the portfolio's state (instance null) or one account's, with who/when/why."""

    instance = models.OneToOneField(
        "accounts.TradingInstance", on_delete=models.CASCADE, null=True, blank=True, related_name="trading_state"
    )
    state = models.CharField(max_length=16, choices=TradingStateValue.choices, default=TradingStateValue.ACTIVE)
    reason = models.TextField(blank=True, default="")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["instance"], name="one_portfolio_state", condition=Q(instance__isnull=True)
            ),
            models.CheckConstraint(condition=Q(state__in=TradingStateValue.values), name="trading_state_valid"),
        ]

    def __str__(self) -> str:
        scope = f"account {self.instance_id}" if self.instance_id else "portfolio"
        return f"{scope}: {self.state}"


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class RiskEvent(models.Model):
    """Something the desk must know about, persisted (never only in one process's memory)."""

    type = models.CharField(max_length=64)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    instance = models.ForeignKey(
        "accounts.TradingInstance", on_delete=models.PROTECT, null=True, blank=True, related_name="risk_events"
    )
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    correlation_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at"], name="riskevent_created"),
            models.Index(fields=["severity", "-created_at"], name="riskevent_severity_created"),
            models.Index(fields=["type", "-created_at"], name="riskevent_type_created"),
            models.Index(fields=["instance", "-created_at"], name="riskevent_instance_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(severity__in=Severity.values), name="riskevent_severity_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.severity} {self.type}"


class BreachLatch(models.Model):
    """An active breach (its key, e.g. `account:42:drawdown`): present while the breach lasts, so the same
    breach raises one event until it clears instead of one per update."""

    key = models.CharField(max_length=128, unique=True)
    event = models.ForeignKey(RiskEvent, on_delete=models.PROTECT, related_name="+")
    raised_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key


class EquityHoldStatus(models.TextChoices):
    OPEN = "open", "Open"
    CONFIRMED = "confirmed", "Confirmed"
    SUPERSEDED = "superseded", "Superseded by a later report"


class EquityHold(models.Model):
    """A reported equity increase beyond max_equity_increase_pct, not applied: equity is self-reported, so one
    bot must not widen everyone's limits on its word. At most one open hold per account, holding the latest held
    figure; an operator's confirmation applies it, a later report within bounds supersedes it."""

    instance = models.ForeignKey("accounts.TradingInstance", on_delete=models.PROTECT, related_name="equity_holds")
    status = models.CharField(max_length=16, choices=EquityHoldStatus.choices, default=EquityHoldStatus.OPEN)
    equity = models.DecimalField(**MONEY, help_text="The latest held figure (what a confirmation applies).")
    cash_balance = models.DecimalField(**MONEY, null=True, blank=True)
    accepted_equity = models.DecimalField(
        **MONEY,
        help_text=(
            "The figure the increase was measured against: the lower of the last accepted figure and the day's "
            "start (or a figure confirmed today); for a first report, the starting balance."
        ),
    )
    reports = models.PositiveIntegerField(default=1, help_text="Held reports merged into this hold.")
    first_reported_at = models.DateTimeField()
    reported_at = models.DateTimeField()
    event = models.ForeignKey(RiskEvent, on_delete=models.PROTECT, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolution_reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["instance"], condition=Q(status=EquityHoldStatus.OPEN), name="one_open_equity_hold"
            ),
            models.CheckConstraint(condition=Q(status__in=EquityHoldStatus.values), name="equityhold_status_valid"),
            models.CheckConstraint(condition=Q(equity__gte=0), name="equityhold_equity_non_negative"),
        ]

    def __str__(self) -> str:
        return f"Hold #{self.pk} of account {self.instance_id}: {self.equity} ({self.status})"


class EquityTransfer(models.Model):
    """A deposit (amount > 0) or withdrawal (amount < 0) an operator recorded: not P&L, so it moves the account's
    equity, peak and start-of-day equity together and is never held. `reference` (the operator's, e.g. the
    exchange's transfer id) is unique per account and makes recording idempotent."""

    instance = models.ForeignKey("accounts.TradingInstance", on_delete=models.PROTECT, related_name="equity_transfers")
    amount = models.DecimalField(**MONEY)
    reference = models.CharField(max_length=64)
    reason = models.TextField()
    equity_before = models.DecimalField(**MONEY)
    equity_after = models.DecimalField(**MONEY)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["instance", "reference"], name="equitytransfer_reference_unique"),
            models.CheckConstraint(condition=~Q(amount=0), name="equitytransfer_amount_not_zero"),
        ]

    def __str__(self) -> str:
        return f"Transfer {self.reference} of account {self.instance_id}: {self.amount}"
