"""A small desk built through the risk services (never factories that would leave the counters behind), and
helpers to read the aggregation's results."""

from decimal import Decimal

from accounts.models import TradingInstance
from risk.models import CorrelationGroup, CorrelationGroupMember
from tests.risk.conftest import funded_account
from tests.risk.services.scenario import close, fill, reserve
from trading.market import market_price_set

D = Decimal


def marks(**prices: str) -> None:
    """Cache marks, e.g. marks(BTC="60000"): symbols BASE-USD."""
    for base, price in prices.items():
        market_price_set(symbol=f"{base}-USD", price=D(price))


def small_desk() -> tuple[TradingInstance, TradingInstance]:
    """Account A (100,000): BTC long 0.3 filled at 50,000, ETH short 2 filled at 3,000, SOL 10 at 100 approved
    and unfilled. Account B (50,000): BTC long 0.1 filled at 52,000, half of it closed at 55,000 (+150).
    Correlation group `majors` holds BTC and ETH (limit 0.50)."""
    group = CorrelationGroup.objects.create(name="majors", limit_pct=D("0.50"))
    CorrelationGroupMember.objects.bulk_create(
        [CorrelationGroupMember(group=group, symbol="BTC-USD"), CorrelationGroupMember(group=group, symbol="ETH-USD")]
    )
    a, b = funded_account("100000"), funded_account("50000")
    fill(reserve(a, symbol="BTC-USD", quantity="0.3", price="50000"), "a-btc", "0.3", "50000")
    fill(reserve(a, symbol="ETH-USD", side="short", quantity="2", price="3000"), "a-eth", "2", "3000")
    reserve(a, symbol="SOL-USD", quantity="10", price="100")
    b_btc = fill(reserve(b, symbol="BTC-USD", quantity="0.1", price="52000"), "b-btc", "0.1", "52000")
    close(b_btc, "b-btc-half", "55000", quantity="0.05")
    return a, b


def desk_of(accounts: int, *, positions_each: int = 2) -> list[TradingInstance]:
    """`accounts` funded accounts, each with filled BTC positions and one closed trade."""
    created = []
    for index in range(accounts):
        account = funded_account("100000")
        for number in range(positions_each):
            position = fill(reserve(account, quantity="0.01", price="50000"), f"f-{index}-{number}", "0.01", "50000")
        close(position, f"c-{index}", "51000", quantity="0.005")
        created.append(account)
    return created
