"""`/api/accounts` and `/api/accounts/{id}`: per-account figures, live from PostgreSQL and the cached marks.

Operators see every account; a bot sees only its own (its list holds that one account; another account's id
answers 404 `account_not_found`, exactly as an unknown id). Lists are paginated (`page`, `page_size` at most 500),
sortable by exposure, drawdown, daily P&L, equity or id (`sort=-drawdown`: descending), and filter by trading
state, stale (no fresh equity report, or the bot silent past its heartbeat_timeout), active and held (an equity
increase waiting for a risk admin's confirmation, shown as `equity_hold`). The last heartbeat and its age are the
bot's last authenticated request (Redis, accounts.liveness).
"""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import TradingInstance
from accounts.permissions import principal_instance_id
from monitoring import api_schema as schema
from monitoring.account_figures import ACCOUNT_LIMITS, usage_field
from monitoring.api_desk import MonitoringApiView
from monitoring.desk import amount, trade_stats_json, usage_text
from monitoring.figures import usage_status
from monitoring.selectors_accounts import SORTS, HeldFigures, account_list, held_figures
from nija.api.pagination import CappedPageNumberPagination
from risk.api_reads import IsOperatorOrBot, query
from risk.engine import TradingMode
from risk.engine.money import ratio
from risk.errors import AccountNotFound
from risk.models import EquityHold

SORT_CHOICES = [*SORTS, *(f"-{name}" for name in SORTS)]


class AccountListQuery(serializers.Serializer):
    sort = serializers.ChoiceField(choices=SORT_CHOICES, required=False, default="-exposure")
    state = serializers.ChoiceField(choices=[mode.value for mode in TradingMode], required=False)
    stale = serializers.BooleanField(required=False, allow_null=False)
    active = serializers.BooleanField(required=False, allow_null=False)
    held = serializers.BooleanField(
        required=False, allow_null=False, help_text="Only accounts with (true) or without (false) an open equity hold."
    )
    page = serializers.IntegerField(required=False, min_value=1, max_value=10**9)
    page_size = serializers.IntegerField(
        required=False, min_value=1, max_value=CappedPageNumberPagination.max_page_size
    )


class AccountListApi(MonitoringApiView):
    """GET /api/accounts?sort=&state=&stale=&active=&held=&page=&page_size=: accounts with their figures."""

    permission_classes = [IsOperatorOrBot]

    @extend_schema(
        operation_id="accounts_list", parameters=[AccountListQuery], responses={200: schema.AccountListOutput}
    )
    def get(self, request: Request) -> Response:
        filters = query(AccountListQuery, request)
        now = timezone.now()
        accounts = account_list(
            now=now,
            sort=filters["sort"],
            state=filters.get("state"),
            stale=filters.get("stale"),
            active=filters.get("active"),
            held=filters.get("held"),
            instance_id=principal_instance_id(request),
        )
        paginator = CappedPageNumberPagination()
        page = paginator.paginate_queryset(accounts, request, view=self)
        figures = held_figures([account.pk for account in page], now=now)
        return paginator.get_paginated_response(
            [account_json(account, figures[account.pk], now=now) for account in page]
        )


class AccountDetailApi(MonitoringApiView):
    """GET /api/accounts/{id}: one account's figures and its exposure by symbol (operators: any; a bot: its own)."""

    permission_classes = [IsOperatorOrBot]

    @extend_schema(
        operation_id="accounts_detail", responses={200: schema.AccountDetailOutput}, examples=[schema.ACCOUNT_EXAMPLE]
    )
    def get(self, request: Request, account_id: int) -> Response:
        query(serializers.Serializer, request)
        own = principal_instance_id(request)
        if own is not None and own != account_id:
            raise AccountNotFound()
        now = timezone.now()
        account = account_list(now=now, instance_id=account_id).first()
        if account is None:
            raise AccountNotFound()
        figures = held_figures([account.pk], now=now)[account.pk]
        return Response(account_json(account, figures, now=now) | {"by_symbol": _by_symbol(account, figures)})


def account_json(account: TradingInstance, figures: HeldFigures, *, now: datetime) -> dict[str, Any]:
    """One account's figures (annotated by monitoring.account_figures) with its positions at the marks. The last
    heartbeat is the later of what PostgreSQL and Redis know (every request of the bot records it in Redis)."""
    market = figures.market
    heartbeat = max(filter(None, (account.last_heartbeat, figures.last_seen)), default=None)
    near = settings.MONITORING_NEAR_LIMIT
    return {
        "id": account.pk,
        "name": account.name,
        "username": account.user.username,
        "is_active": account.is_active,
        "status": account.status,
        "state": account.state,
        "equity": amount(account.equity),
        "peak_equity": amount(account.peak_equity),
        "day_start_equity": amount(account.today_start_equity),
        "daily_pnl": amount(account.daily_pnl),
        "daily_pnl_pct": amount(ratio(account.daily_pnl, account.today_start_equity)),
        "drawdown": amount(account.drawdown),
        "exposure": amount(account.exposure),
        "market_exposure": amount(market.market_exposure),
        "exposure_pct": amount(ratio(market.market_exposure, account.equity)),
        "unrealized_pnl": amount(market.unrealized_pnl),
        "position_count": account.position_count,
        "trades": trade_stats_json(figures.trades),
        "stale": account.stale,
        "equity_stale": account.equity_stale,
        "heartbeat_stale": account.heartbeat_stale,
        "equity_reported_at": _time(account.equity_reported_at),
        "last_heartbeat": _time(heartbeat),
        "heartbeat_age_s": None if heartbeat is None else max(0, int((now - heartbeat).total_seconds())),
        "heartbeat_lost_at": _time(account.heartbeat_lost_at),
        "worst_usage": usage_text(account.worst_usage),
        "limits": [
            {
                "limit": limit,
                "usage": usage_text(getattr(account, usage_field(limit))),
                "status": usage_status(getattr(account, usage_field(limit)), near=near).value,
            }
            for limit in ACCOUNT_LIMITS
        ],
        "equity_hold": _hold_json(figures.equity_hold),
    }


def _hold_json(hold: EquityHold | None) -> dict[str, Any] | None:
    """The held figure (what a confirmation applies), what it was measured against, and since when."""
    if hold is None:
        return None
    return {
        "equity": amount(hold.equity),
        "accepted_equity": amount(hold.accepted_equity),
        "reports": hold.reports,
        "first_reported_at": hold.first_reported_at.isoformat(),
        "reported_at": hold.reported_at.isoformat(),
    }


def _by_symbol(account: TradingInstance, figures: HeldFigures) -> list[dict[str, Any]]:
    return [
        {
            "symbol": symbol.symbol,
            "mark": amount(symbol.mark),
            "exposure": amount(symbol.booked),
            "market_exposure": amount(symbol.market_exposure),
            "unrealized_pnl": amount(symbol.unrealized_pnl),
            "pct": amount(ratio(symbol.market_exposure, account.equity)),
            "positions": symbol.positions,
        }
        for symbol in figures.market.by_symbol
    ]


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
