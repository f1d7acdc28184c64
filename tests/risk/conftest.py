"""Risk test helpers: funded accounts (equity reported through the service, so portfolio totals stay exact),
bot and operator clients with real tokens, a counter audit comparing every counter with its positions, and an
equity audit comparing the portfolio's equity totals with the accounts counted in them."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db.models import Count, Q, Sum
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import TokenKind, TradingInstance
from risk.models import CorrelationGroup, Portfolio, SymbolExposure
from risk.services.equity import equity_report
from tests.accounts.factories import OperatorFactory, TradingInstanceFactory, UserPermissionFactory, issue_token
from trading.models import Position

ACTIVE = ["pending_approval", "approved", "open"]


def funded_account(
    equity: Decimal | str = "100000", *, permission: dict | None = None, **instance_fields: object
) -> TradingInstance:
    """A running instance whose equity was reported through `equity_report` (fresh, counted in the portfolio). Its
    starting balance is that equity (unless given), so the first report is within bounds and applies."""
    instance = TradingInstanceFactory(
        **{"starting_balance": Decimal(equity)}
        | instance_fields
        | {"equity": Decimal(0), "peak_equity": Decimal(0), "day_start_equity": Decimal(0)}
    )
    UserPermissionFactory(
        user=instance.user,
        **{"max_position_size": Decimal("1000000"), "max_daily_loss": Decimal("1000000"), "max_open_positions": 1000}
        | (permission or {}),
    )
    equity_report(instance_id=instance.pk, equity=Decimal(equity), cash_balance=None, now=timezone.now())
    instance.refresh_from_db()
    return instance


def bot_client(instance: TradingInstance) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(TokenKind.BOT, instance=instance)}")
    return client


def operator_client(*roles: str) -> tuple[APIClient, object]:
    operator = OperatorFactory()
    operator.groups.add(*Group.objects.filter(name__in=roles))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(TokenKind.OPERATOR, user=operator)}")
    return client, operator


def counter_drift() -> list[str]:
    """Every counter that differs from the sum over the positions it counts (empty when all agree)."""
    drift = []
    active = Q(positions__status__in=ACTIVE)
    for instance in TradingInstance.objects.annotate(
        held=Sum("positions__notional", filter=active), count=Count("positions", filter=active)
    ):
        if (instance.held or 0) != instance.exposure or instance.count != instance.position_count:
            counted = f"{instance.exposure}/{instance.position_count}"
            drift.append(f"account {instance.pk}: {counted} != {instance.held}/{instance.count}")
    totals = Position.objects.filter(status__in=ACTIVE).aggregate(held=Sum("notional"), count=Count("id"))
    portfolio = Portfolio.objects.get()
    if (totals["held"] or 0) != portfolio.exposure or totals["count"] != portfolio.position_count:
        drift.append(
            f"portfolio: {portfolio.exposure}/{portfolio.position_count} != {totals['held']}/{totals['count']}"
        )
    for row in SymbolExposure.objects.all():
        sums = Position.objects.filter(status__in=ACTIVE, symbol=row.symbol).aggregate(
            held=Sum("notional"), count=Count("id")
        )
        if (sums["held"] or 0) != row.exposure or sums["count"] != row.position_count:
            drift.append(f"symbol {row.symbol}: {row.exposure}/{row.position_count} != {sums['held']}/{sums['count']}")
    for group in CorrelationGroup.objects.prefetch_related("members"):
        symbols = [member.symbol for member in group.members.all()]
        held = Position.objects.filter(status__in=ACTIVE, symbol__in=symbols).aggregate(held=Sum("notional"))["held"]
        if (held or 0) != group.exposure:
            drift.append(f"group {group.name}: {group.exposure} != {held}")
    return drift


def equity_drift() -> list[str]:
    """The portfolio's equity totals against the sums over the accounts flagged as counted (empty when equal), and
    every counted account that should not be (inactive account or user)."""
    counted = TradingInstance.objects.filter(equity_counted=True)
    sums = counted.aggregate(equity=Sum("equity"), day_start=Sum("day_start_equity"))
    portfolio = Portfolio.objects.get()
    drift = []
    if (portfolio.equity, portfolio.day_start_equity) != (sums["equity"] or 0, sums["day_start"] or 0):
        drift.append(
            f"portfolio: {portfolio.equity}/{portfolio.day_start_equity} != {sums['equity']}/{sums['day_start']}"
        )
    inactive = counted.filter(Q(is_active=False) | Q(user__is_active=False)).values_list("pk", flat=True)
    drift.extend(f"account {pk}: counted but inactive" for pk in inactive)
    return drift


@pytest.fixture
def relaxed_rate_limits(settings) -> None:
    """Tests that send many checks from one token lift the check scope's limit (the limiter has its own tests)."""
    settings.RATE_LIMITS = {
        scope: {tier: (100_000, 60) for tier in tiers} for scope, tiers in settings.RATE_LIMITS.items()
    }
