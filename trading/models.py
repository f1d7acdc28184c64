"""Trading data: positions (every risk check that was not a dry run, with its decision), their fills, the
trades that closed them and the per-day statistics of each trading instance.

Declarative only: no logic in save(), no signals. State transitions and every change that moves exposure
belong to the risk services (risk/services/: check, lifecycle, exposure); the database enforces the invariants
below with CheckConstraint / UniqueConstraint. Trading history is never cascaded away: every foreign key to an instance,
a position or a user is PROTECT (deactivate instances and users instead of deleting them).
Symbols are canonical `BASE-USD` (trading/symbols.py), enforced by a regular-expression constraint.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.lookups import Exact

from nija.models import TimeStampedModel
from trading.symbols import SYMBOL_MAX_LENGTH, SYMBOL_SQL_REGEX

MONEY = {"max_digits": 18, "decimal_places": 8}
ZERO = Decimal("0")


class Side(models.TextChoices):
    LONG = "long", "Long"
    SHORT = "short", "Short"


class PositionStatus(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    APPROVED = "approved", "Approved"
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


# The statuses whose notional counts in exposure (TradingInstance.exposure / position_count and the risk rows).
EXPOSURE_STATUSES = (PositionStatus.PENDING_APPROVAL, PositionStatus.APPROVED, PositionStatus.OPEN)


def _is_json_array(field: str) -> Exact:
    """A database condition: `field` (jsonb) holds an array."""
    return Exact(
        models.Func(F(field), function="jsonb_typeof", output_field=models.TextField()),
        models.Value("array"),
    )


class Position(TimeStampedModel):
    """One risk check and what became of it: decision, reservation, fills and close.

    `notional` is what the position holds against the limits while its status is in EXPOSURE_STATUSES: the n the
    check reserved (quantity * max(price, fresh mark), rounded up to 8 decimals) until filled, then `open_cost` plus
    the unfilled rest's share of n until that rest is filled or released. `open_cost` is the exact cost of what is
    open (each fill adds quantity x price, each close removes its share) and `open_entry_fees` the fill fees not yet
    booked by a close; `entry_price` is only their average shown (open_cost / open quantity). `reasons` lists every
    failing rule as {code, message, limit, value, scope}. `client_order_id` is unique per instance;
    `request_fingerprint` (SHA-256 of the canonical request body) tells a retry from a different body under the
    same id. `approved_at` is when it was approved (by the check or an operator), so an order placed under that
    approval can still be filled after its unfilled rest was released. `realized_pnl` is the sum of its trades'
    `pnl`; `fees` the sum of its fills' and trades' fees.
    """

    instance = models.ForeignKey(
        "accounts.TradingInstance", on_delete=models.PROTECT, related_name="positions", db_index=False
    )
    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH)
    side = models.CharField(max_length=8, choices=Side.choices)
    quantity = models.DecimalField(**MONEY)
    requested_price = models.DecimalField(**MONEY)
    entry_price = models.DecimalField(**MONEY, null=True, blank=True)
    exit_price = models.DecimalField(**MONEY, null=True, blank=True)
    notional = models.DecimalField(**MONEY)
    filled_quantity = models.DecimalField(**MONEY, default=ZERO)
    closed_quantity = models.DecimalField(**MONEY, default=ZERO)
    status = models.CharField(max_length=24, choices=PositionStatus.choices)
    reduce_only = models.BooleanField(default=False)
    reasons = models.JSONField(default=list, blank=True)
    client_order_id = models.CharField(max_length=64, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    reservation_expires_at = models.DateTimeField(null=True, blank=True)
    # Set by the risk services: the n the rules checked, the decision the bot was given (a retry with the same
    # client_order_id is answered with it), and when the unfilled rest stopped being reserved.
    checked_notional = models.DecimalField(**MONEY, default=ZERO)
    open_cost = models.DecimalField(**MONEY, default=ZERO)
    open_entry_fees = models.DecimalField(**MONEY, default=ZERO)
    approved_at = models.DateTimeField(null=True, blank=True)
    check_decision = models.CharField(max_length=24, blank=True, default="")
    unfilled_released_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="decided_positions",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True, default="")
    realized_pnl = models.DecimalField(**MONEY, default=ZERO)
    fees = models.DecimalField(**MONEY, default=ZERO)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["instance", "status"], name="position_instance_status_idx"),
            models.Index(fields=["symbol", "status"], name="position_symbol_status_idx"),
            models.Index(fields=["status", "reservation_expires_at"], name="position_status_expires_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(symbol__regex=SYMBOL_SQL_REGEX), name="position_symbol_canonical"),
            models.CheckConstraint(condition=Q(side__in=Side.values), name="position_side_valid"),
            models.CheckConstraint(condition=Q(status__in=PositionStatus.values), name="position_status_valid"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="position_quantity_gt_0"),
            models.CheckConstraint(condition=Q(requested_price__gt=0), name="position_requested_price_gt_0"),
            models.CheckConstraint(condition=Q(notional__gte=0), name="position_notional_gte_0"),
            models.CheckConstraint(
                condition=Q(filled_quantity__gte=0, filled_quantity__lte=F("quantity")),
                name="position_filled_quantity_range",
            ),
            models.CheckConstraint(
                condition=Q(closed_quantity__gte=0, closed_quantity__lte=F("filled_quantity")),
                name="position_closed_quantity_range",
            ),
            models.CheckConstraint(
                condition=Q(entry_price__isnull=True) | Q(entry_price__gt=0), name="position_entry_price_gt_0"
            ),
            models.CheckConstraint(
                condition=Q(exit_price__isnull=True) | Q(exit_price__gt=0), name="position_exit_price_gt_0"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=[PositionStatus.OPEN, PositionStatus.CLOSED])
                | Q(entry_price__isnull=False, filled_quantity__gt=0),
                name="position_open_or_closed_is_filled",
            ),
            models.CheckConstraint(
                condition=Q(filled_quantity__gt=F("closed_quantity"), open_cost__gt=0)
                | Q(filled_quantity=F("closed_quantity"), open_cost=0, open_entry_fees=0),
                name="position_open_cost_iff_open",
            ),
            models.CheckConstraint(
                condition=~Q(status=PositionStatus.CLOSED) | Q(filled_quantity=F("closed_quantity")),
                name="position_closed_has_nothing_open",
            ),
            models.CheckConstraint(
                condition=~Q(status=PositionStatus.OPEN)
                | Q(filled_quantity__gt=F("closed_quantity"))
                | Q(filled_quantity__lt=F("quantity"), unfilled_released_at__isnull=True),
                name="position_open_holds_something",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=[PositionStatus.APPROVED, PositionStatus.OPEN, PositionStatus.CLOSED])
                | Q(approved_at__isnull=False),
                name="position_approved_has_approved_at",
            ),
            models.CheckConstraint(
                condition=Q(client_order_id__isnull=True) | ~Q(client_order_id=""),
                name="position_client_order_id_not_empty",
            ),
            models.CheckConstraint(condition=_is_json_array("reasons"), name="position_reasons_is_array"),
            models.UniqueConstraint(
                fields=["instance", "client_order_id"],
                condition=Q(client_order_id__isnull=False),
                name="position_client_order_id_unique_per_instance",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.side} {self.quantity} {self.symbol} ({self.status})"


class Fill(TimeStampedModel):
    """An execution reported by a bot, idempotent by (instance, exchange_order_id). Fees may be zero or
    negative (a maker rebate)."""

    position = models.ForeignKey(Position, on_delete=models.PROTECT, related_name="fills")
    instance = models.ForeignKey(
        "accounts.TradingInstance", on_delete=models.PROTECT, related_name="fills", db_index=False
    )
    exchange_order_id = models.CharField(max_length=128)
    quantity = models.DecimalField(**MONEY)
    price = models.DecimalField(**MONEY)
    fees = models.DecimalField(**MONEY, default=ZERO)
    filled_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="fill_quantity_gt_0"),
            models.CheckConstraint(condition=Q(price__gt=0), name="fill_price_gt_0"),
            models.CheckConstraint(condition=~Q(exchange_order_id=""), name="fill_exchange_order_id_not_empty"),
            models.UniqueConstraint(
                fields=["instance", "exchange_order_id"], name="fill_exchange_order_id_unique_per_instance"
            ),
        ]

    def __str__(self) -> str:
        return f"fill {self.exchange_order_id}: {self.quantity} @ {self.price}"


class Trade(TimeStampedModel):
    """The record of a close, whole or partial, idempotent by (instance, client_close_id).

    `pnl` is the realized P&L of the close: its proceeds (quantity x exit price) less the cost of the quantity it
    closed (for a long; the reverse for a short), less its own `fees` and its share of the entry fees. The closes of
    a position add up to its cash P&L exactly. `entry_price` is the average cost of the open lots it closed (shown,
    never booked)."""

    instance = models.ForeignKey(
        "accounts.TradingInstance", on_delete=models.PROTECT, related_name="trades", db_index=False
    )
    position = models.ForeignKey(Position, on_delete=models.PROTECT, related_name="trades")
    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH)
    side = models.CharField(max_length=8, choices=Side.choices)
    quantity = models.DecimalField(**MONEY)
    entry_price = models.DecimalField(**MONEY)
    exit_price = models.DecimalField(**MONEY)
    pnl = models.DecimalField(**MONEY)
    fees = models.DecimalField(**MONEY, default=ZERO)
    client_close_id = models.CharField(max_length=128)
    closed_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["instance", "closed_at"], name="trade_instance_closed_at_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(symbol__regex=SYMBOL_SQL_REGEX), name="trade_symbol_canonical"),
            models.CheckConstraint(condition=Q(side__in=Side.values), name="trade_side_valid"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="trade_quantity_gt_0"),
            models.CheckConstraint(condition=Q(entry_price__gt=0), name="trade_entry_price_gt_0"),
            models.CheckConstraint(condition=Q(exit_price__gt=0), name="trade_exit_price_gt_0"),
            models.CheckConstraint(condition=~Q(client_close_id=""), name="trade_client_close_id_not_empty"),
            models.UniqueConstraint(fields=["instance", "client_close_id"], name="trade_client_close_id_unique"),
        ]

    def __str__(self) -> str:
        return f"trade {self.client_close_id}: {self.side} {self.quantity} {self.symbol} pnl {self.pnl}"


class DailyStatistic(TimeStampedModel):
    """One UTC day of one instance. `gross_loss` is a magnitude (>= 0), so profit factor = gross_profit /
    gross_loss; `max_drawdown` is a fraction of the peak (0..1)."""

    instance = models.ForeignKey(
        "accounts.TradingInstance", on_delete=models.PROTECT, related_name="daily_statistics", db_index=False
    )
    date = models.DateField(db_index=True)
    start_equity = models.DecimalField(**MONEY)
    end_equity = models.DecimalField(**MONEY)
    realized_pnl = models.DecimalField(**MONEY, default=ZERO)
    trades = models.PositiveIntegerField(default=0)
    wins = models.PositiveIntegerField(default=0)
    losses = models.PositiveIntegerField(default=0)
    gross_profit = models.DecimalField(**MONEY, default=ZERO)
    gross_loss = models.DecimalField(**MONEY, default=ZERO)
    max_drawdown = models.DecimalField(**MONEY, default=ZERO)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "date"], name="dailystatistic_unique_per_instance_date"),
            models.CheckConstraint(condition=Q(start_equity__gte=0), name="dailystatistic_start_equity_gte_0"),
            models.CheckConstraint(condition=Q(end_equity__gte=0), name="dailystatistic_end_equity_gte_0"),
            models.CheckConstraint(
                condition=Q(wins__gte=0, losses__gte=0) & Q(trades__gte=F("wins") + F("losses")),
                name="dailystatistic_wins_losses_within_trades",
            ),
            models.CheckConstraint(
                condition=Q(gross_profit__gte=0, gross_loss__gte=0), name="dailystatistic_gross_amounts_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(max_drawdown__gte=0, max_drawdown__lte=1), name="dailystatistic_max_drawdown_fraction"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instance_id} {self.date}"
