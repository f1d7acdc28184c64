"""Monitoring data: the desk's figures once a minute, for charts (`MetricSnapshot`), with each account's equity and
exposure at that minute (`AccountMetricPoint`).

Written only by the aggregation task (monitoring.services), pruned by the retention task. Derived figures (daily
P&L, drawdown, exposure as a fraction of equity) are not stored: they are computed from these columns when read.

Per-account points are a child table rather than a JSON column on the snapshot: one account's history is then an
index range (instance, snapshot) instead of a scan that unpacks every account's figures of every minute, and the
portfolio's history never reads them at all. Their primary key is (snapshot, instance): the insert and the pruning
walk it by snapshot; the second index serves one account's chart.

The alert models live in monitoring.alerts.models and are registered here.
"""

from decimal import Decimal

from django.db import models

from monitoring.alerts.models import (  # noqa: F401 - registered with the monitoring app
    AlertDelivery,
    AlertDeliveryAttempt,
    AlertEvent,
    AlertRule,
    AlertState,
    NotificationChannel,
)

TOTAL = {"max_digits": 28, "decimal_places": 8}
MONEY = {"max_digits": 18, "decimal_places": 8}
ZERO = Decimal(0)


class MetricSnapshot(models.Model):
    """The portfolio at one minute (the first aggregation run of that minute writes it; `minute` is unique).

    `equity` and `day_start_equity` are the portfolio's counters; `peak_equity` is the sum of the same accounts'
    high-water marks (portfolio drawdown = (peak_equity - equity) / peak_equity); `exposure` is the booked exposure
    the limits count and `market_exposure` / `unrealized_pnl` the same positions at the cached marks.
    """

    minute = models.DateTimeField(unique=True)
    taken_at = models.DateTimeField()
    equity = models.DecimalField(**TOTAL)
    day_start_equity = models.DecimalField(**TOTAL)
    peak_equity = models.DecimalField(**TOTAL)
    exposure = models.DecimalField(**TOTAL)
    market_exposure = models.DecimalField(**TOTAL)
    unrealized_pnl = models.DecimalField(**TOTAL)
    position_count = models.IntegerField()
    account_count = models.IntegerField()
    stale_account_count = models.IntegerField()

    class Meta:
        ordering = ["minute"]

    def __str__(self) -> str:
        return f"snapshot {self.minute:%Y-%m-%d %H:%M}"


class AccountMetricPoint(models.Model):
    """One account's equity and booked exposure at a snapshot's minute."""

    pk = models.CompositePrimaryKey("snapshot", "instance")
    snapshot = models.ForeignKey(
        MetricSnapshot, on_delete=models.CASCADE, related_name="account_points", db_index=False
    )
    instance = models.ForeignKey(
        "accounts.TradingInstance", on_delete=models.CASCADE, related_name="metric_points", db_index=False
    )
    equity = models.DecimalField(**MONEY)
    exposure = models.DecimalField(**MONEY)

    class Meta:
        indexes = [models.Index(fields=["instance", "snapshot"], name="accountpoint_instance_snapshot")]

    def __str__(self) -> str:
        return f"account {self.instance_id} at snapshot {self.snapshot_id}"
