"""Risk test helpers: funded accounts (equity reported through the service, so portfolio totals stay exact),
bot and operator clients with real tokens, a counter audit comparing every counter with its positions, an equity
audit comparing the portfolio's equity totals with the accounts counted in them, and a books oracle rebuilding
every position's books from its fills and closes."""

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal, localcontext

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import TokenKind, TradingInstance
from accounts.services import instance_tokens_recache, user_tokens_recache
from risk.models import CorrelationGroup, Portfolio, SymbolExposure
from risk.services.equity import equity_report
from tests.accounts.factories import OperatorFactory, TradingInstanceFactory, UserPermissionFactory, issue_token
from trading.models import Fill, Position, Trade

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


def deactivate_outside_the_gate(account: TradingInstance, what: str) -> None:
    """`is_active` of the account's user (what="user") or of the account itself written straight to its row, as a
    shell would: no equity moved, no reservation released (the periodic sweep catches up), its tokens re-cached
    after commit. The states the risk gate must still refuse or sweep; risk.services.activation is the real door."""
    with transaction.atomic():
        if what == "user":
            account.user.is_active = False
            account.user.save(update_fields=["is_active", "updated_at"])
            user_tokens_recache(account.user)
        else:
            account.is_active = False
            account.save(update_fields=["is_active", "updated_at"])
            instance_tokens_recache(account)


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


# ---------------------------------------------------------------------------------------------- the books oracle
Q8 = Decimal("0.00000001")


@dataclass
class _Books:
    """One position's books as rebuilt by the oracle: what is open and what its closes booked."""

    open_quantity: Decimal = Decimal(0)
    open_cost: Decimal = Decimal(0)
    open_entry_fees: Decimal = Decimal(0)
    filled: Decimal = Decimal(0)
    closed: Decimal = Decimal(0)
    realized: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    cash: Decimal = Decimal(0)  # what the position's trading moved in cash: proceeds - costs (long), less every fee


def _value(quantity: Decimal, price: Decimal) -> Decimal:
    return (quantity * price).quantize(Q8, rounding=ROUND_UP)


def _share(amount: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    return (amount * part / whole).quantize(Q8, rounding=ROUND_DOWN)


def books_drift() -> list[str]:
    """Every position's books rebuilt from its `Fill` and `Trade` rows alone (quantity, price, exit price, fees and
    the order they were written in), compared with what the services stored: the open cost and entry fees, the
    average entry price shown, each trade's P&L and entry price, the position's realized P&L, quantities and fees,
    what it holds against the limits, and, once nothing is open, realized P&L equal to the cash P&L exactly.

    The rules, as the design states them: a fill adds quantity x price (rounded up to 8 decimals) to the open cost
    and its fees to the open entry fees; a close takes its share of both (rounded toward zero; the close that
    leaves nothing open takes the remainder) and books proceeds - cost - its fees - its entry-fee share (cost -
    proceeds ... for a short). Nothing here reads `notional`, `open_cost`, `realized_pnl` or `Trade.pnl` to
    compute an expectation. Empty when every position agrees."""
    with localcontext(prec=100):  # exact: no product or quotient of NUMERIC(18,8) values is rounded by the context
        return [problem for position in Position.objects.order_by("pk") for problem in _position_drift(position)]


def _position_drift(position: Position) -> list[str]:
    books, problems = _Books(), []
    side = 1 if position.side == "long" else -1
    for _, kind, _, row in _ledger(position):
        if kind == "fill":
            cost = _value(row.quantity, row.price)
            books.open_quantity += row.quantity
            books.open_cost += cost
            books.open_entry_fees += row.fees
            books.filled += row.quantity
            books.cash -= side * cost
        else:
            problems += _close_drift(position, books, row, side)
        books.fees += row.fees
        books.cash -= row.fees
    name = f"position {position.pk}"
    stored = (
        position.open_cost, position.open_entry_fees, position.realized_pnl, position.filled_quantity,
        position.closed_quantity, position.fees,
    )  # fmt: skip
    rebuilt = (books.open_cost, books.open_entry_fees, books.realized, books.filled, books.closed, books.fees)
    if stored != rebuilt:
        problems.append(f"{name}: (cost, entry fees, realized, filled, closed, fees) {stored} != {rebuilt}")
    if books.open_quantity > 0 and position.entry_price != (books.open_cost / books.open_quantity).quantize(Q8):
        problems.append(f"{name}: entry price {position.entry_price} is not the open cost over the open quantity")
    if books.filled and not books.open_quantity and position.realized_pnl != books.cash:
        problems.append(f"{name}: realized {position.realized_pnl} != cash P&L {books.cash}")
    return problems + _holding_drift(position, books)


def _ledger(position: Position) -> list[tuple]:
    """The position's fills and closes in the order they were written (each under the position's row lock)."""
    fills = [(row.created_at, "fill", row.pk, row) for row in Fill.objects.filter(position=position)]
    closes = [(row.created_at, "close", row.pk, row) for row in Trade.objects.filter(position=position)]
    return sorted(fills + closes, key=lambda entry: entry[:3])


def _close_drift(position: Position, books: _Books, trade: Trade, side: int) -> list[str]:
    if trade.quantity > books.open_quantity:
        return [f"trade {trade.pk}: closes {trade.quantity} of {books.open_quantity} open"]
    average = (books.open_cost / books.open_quantity).quantize(Q8)
    if trade.quantity == books.open_quantity:
        cost, entry_fees = books.open_cost, books.open_entry_fees
    else:
        cost = _share(books.open_cost, trade.quantity, books.open_quantity)
        entry_fees = _share(books.open_entry_fees, trade.quantity, books.open_quantity)
    proceeds = _value(trade.quantity, trade.exit_price)
    pnl = side * (proceeds - cost) - trade.fees - entry_fees
    books.open_quantity -= trade.quantity
    books.open_cost -= cost
    books.open_entry_fees -= entry_fees
    books.closed += trade.quantity
    books.realized += pnl
    books.cash += side * proceeds
    if (trade.pnl, trade.entry_price) != (pnl, average):
        return [f"trade {trade.pk}: (pnl, entry price) {(trade.pnl, trade.entry_price)} != {(pnl, average)}"]
    return []


def _holding_drift(position: Position, books: _Books) -> list[str]:
    """What the position holds against the limits: the rebuilt open cost plus the unfilled rest's share of the
    checked n while it is reserved; a position holding nothing is not open."""
    reserved = position.unfilled_released_at is None and books.filled < position.quantity
    unfilled = Decimal(0)
    if reserved:
        unfilled = (position.checked_notional * (position.quantity - books.filled) / position.quantity).quantize(
            Q8, rounding=ROUND_UP
        )
    if position.status == "open" and not books.open_quantity and not reserved:
        return [f"position {position.pk} is open holding nothing"]
    if position.status == "closed" and books.open_quantity:
        return [f"position {position.pk} is closed with {books.open_quantity} open"]
    if position.status in ACTIVE and position.notional != books.open_cost + unfilled:
        return [f"position {position.pk}: holds {position.notional} != {books.open_cost} + {unfilled}"]
    return []


@pytest.fixture
def relaxed_rate_limits(settings) -> None:
    """Tests that send many checks from one token lift the check scope's limit (the limiter has its own tests)."""
    settings.RATE_LIMITS = {
        scope: {tier: (100_000, 60) for tier in tiers} for scope, tiers in settings.RATE_LIMITS.items()
    }
