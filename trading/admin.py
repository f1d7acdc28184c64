"""Operator admin for trading history: positions, fills, trades, daily statistics.

Every row here is written by the risk services or scheduled jobs, and moving a position's status, quantity or
notional by hand would desynchronize the exposure counters, so these pages are read-only: no add, no change,
no delete (history is PROTECT anyway). The risk app re-registers `PositionAdmin` (risk/admin.py) with approve
and reject actions that call its services. Changelists join what they display (`list_select_related`) and skip
the unfiltered full count, so a page costs a fixed number of queries at any table size.
"""

from django.contrib import admin
from django.http import HttpRequest

from trading.models import DailyStatistic, Fill, Position, Trade


class ReadOnlyHistoryAdmin(admin.ModelAdmin):
    """A read-only view of rows that only services and jobs write."""

    show_full_result_count = False
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Position)
class PositionAdmin(ReadOnlyHistoryAdmin):
    list_display = ("id", "instance", "symbol", "side", "quantity", "notional", "status", "created_at")
    list_filter = ("status", "side", "symbol")
    search_fields = ("symbol", "client_order_id", "instance__name")
    list_select_related = ("instance",)
    raw_id_fields = ("instance", "decided_by")
    ordering = ("-id",)
    fieldsets = (
        (None, {"fields": ("instance", "symbol", "side", "reduce_only", "status")}),
        (
            "Size and prices",
            {
                "fields": (
                    "quantity",
                    "requested_price",
                    "notional",
                    "filled_quantity",
                    "closed_quantity",
                    "entry_price",
                    "exit_price",
                    "realized_pnl",
                    "fees",
                )
            },
        ),
        (
            "Decision",
            {"fields": ("reasons", "decided_by", "decided_at", "decision_reason", "reservation_expires_at")},
        ),
        ("Request", {"fields": ("client_order_id", "request_fingerprint")}),
        ("Times", {"fields": ("created_at", "updated_at", "opened_at", "closed_at")}),
    )
    readonly_fields = ("decided_by", "decided_at", "decision_reason", "reasons", "created_at", "updated_at")


@admin.register(Fill)
class FillAdmin(ReadOnlyHistoryAdmin):
    list_display = ("id", "instance", "position", "exchange_order_id", "quantity", "price", "fees", "filled_at")
    search_fields = ("exchange_order_id", "instance__name")
    list_select_related = ("instance", "position")
    raw_id_fields = ("instance", "position")
    ordering = ("-id",)


@admin.register(Trade)
class TradeAdmin(ReadOnlyHistoryAdmin):
    list_display = (
        "id",
        "instance",
        "symbol",
        "side",
        "quantity",
        "entry_price",
        "exit_price",
        "pnl",
        "fees",
        "closed_at",
    )
    list_filter = ("side", "symbol")
    search_fields = ("symbol", "client_close_id", "instance__name")
    list_select_related = ("instance",)
    raw_id_fields = ("instance", "position")
    date_hierarchy = "closed_at"
    ordering = ("-closed_at", "-id")


@admin.register(DailyStatistic)
class DailyStatisticAdmin(ReadOnlyHistoryAdmin):
    list_display = (
        "instance",
        "date",
        "start_equity",
        "end_equity",
        "realized_pnl",
        "trades",
        "wins",
        "losses",
        "max_drawdown",
    )
    search_fields = ("instance__name",)
    list_select_related = ("instance",)
    raw_id_fields = ("instance",)
    date_hierarchy = "date"
    ordering = ("-date", "instance_id")
