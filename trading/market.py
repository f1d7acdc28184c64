"""The market price cache: the last price (the mark) per symbol, with bid/ask, in Redis under `market:<symbol>`.

Responsible for what a valid price is and when a stored one is too old to use. Writes come from price feeds
and operators (PUT /api/market/{symbol}); the risk engine reads a fresh mark with `market_price_get`.

Stored as JSON strings (`{"symbol", "price", "bid", "ask", "timestamp"}`, Decimals as strings, timestamp in
ISO 8601 UTC, server time) with a TTL of `settings.MARKET_PRICE_TTL` seconds. A price older than the TTL reads
as missing even if Redis still holds it (a TTL shortened after the write, say), and so does a value that does
not parse back into a valid price: a bad mark is worse than none.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils import timezone

from nija.cache import MARKET
from nija.errors import InvalidInput, ServiceUnavailableError
from trading.symbols import canonical_symbol

logger = logging.getLogger(__name__)

PRICE_DECIMALS = 8
# NUMERIC(18, 8): at most 10 integer digits. A price at or above this is a feed error, not a market.
MAX_PRICE = Decimal("1e10")
_QUANTUM = Decimal(1).scaleb(-PRICE_DECIMALS)


class InvalidMarketPrice(InvalidInput, ValueError):
    """A price, bid or ask that is not a usable mark; `field` names the input at fault (400 validation_error; a
    ValueError too, as a stored value that fails validation reads as missing)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(fields={field: [message]})
        self.field = field
        self.message = message


class MarketPriceUnavailable(ServiceUnavailableError):
    """Redis did not store the price (it is unreachable)."""

    default_code = "market_cache_unavailable"
    default_detail = "The price cache is unavailable."


@dataclass(frozen=True)
class MarketPrice:
    symbol: str
    price: Decimal
    bid: Decimal | None
    ask: Decimal | None
    timestamp: datetime

    def age(self, now: datetime) -> timedelta:
        return now - self.timestamp

    def to_json(self) -> dict[str, str | None]:
        return {
            "symbol": self.symbol,
            "price": str(self.price),
            "bid": None if self.bid is None else str(self.bid),
            "ask": None if self.ask is None else str(self.ask),
            "timestamp": self.timestamp.isoformat(),
        }


def _checked_amount(field: str, value: Decimal) -> Decimal:
    if not isinstance(value, Decimal):
        raise InvalidMarketPrice(field, "must be a decimal number.")
    if not value.is_finite():
        raise InvalidMarketPrice(field, "must be a finite number.")
    if value <= 0:
        raise InvalidMarketPrice(field, "must be positive.")
    if value >= MAX_PRICE:
        raise InvalidMarketPrice(field, f"must be less than {MAX_PRICE:,.0f}.")
    if value != value.quantize(_QUANTUM):
        raise InvalidMarketPrice(field, f"at most {PRICE_DECIMALS} decimal places.")
    return value


def market_price_validate(*, price: Decimal, bid: Decimal | None = None, ask: Decimal | None = None) -> None:
    """Raise `InvalidMarketPrice` unless every given amount is a usable price and bid <= ask."""
    _checked_amount("price", price)
    if bid is not None:
        _checked_amount("bid", bid)
    if ask is not None:
        _checked_amount("ask", ask)
    if bid is not None and ask is not None and bid > ask:
        raise InvalidMarketPrice("bid", "must not be above the ask.")


def market_price_set(
    *,
    symbol: str,
    price: Decimal,
    bid: Decimal | None = None,
    ask: Decimal | None = None,
    now: datetime | None = None,
) -> MarketPrice:
    """Validate and store the mark for `symbol` (canonicalized; ValueError if it cannot be) with the TTL.

    Raises `InvalidMarketPrice` for a bad amount and `MarketPriceUnavailable` when Redis did not take the write.
    """
    market_price_validate(price=price, bid=bid, ask=ask)
    mark = MarketPrice(
        symbol=canonical_symbol(symbol),
        price=price,
        bid=bid,
        ask=ask,
        timestamp=now or timezone.now(),
    )
    if not MARKET.set(mark.symbol, mark.to_json(), ttl=settings.MARKET_PRICE_TTL):
        raise MarketPriceUnavailable()
    return mark


def _decoded(symbol: str, data: object) -> MarketPrice | None:
    try:
        price = Decimal(data["price"])  # type: ignore[index]
        bid = None if data["bid"] is None else Decimal(data["bid"])  # type: ignore[index]
        ask = None if data["ask"] is None else Decimal(data["ask"])  # type: ignore[index]
        timestamp = datetime.fromisoformat(data["timestamp"])  # type: ignore[index]
        market_price_validate(price=price, bid=bid, ask=ask)
    except (KeyError, TypeError, ValueError, InvalidOperation):
        logger.warning("market_price_corrupt", extra={"symbol": symbol})
        return None
    if timestamp.tzinfo is None:
        return None
    return MarketPrice(symbol=symbol, price=price, bid=bid, ask=ask, timestamp=timestamp)


def market_price_key(symbol: str) -> str | None:
    """The Redis key `market_price_get(symbol)` reads (for a view to read it ahead, nija.cache.prefetched_reads);
    None when `symbol` cannot be canonicalized."""
    try:
        return MARKET.raw_key(canonical_symbol(symbol))
    except (TypeError, ValueError):
        return None


def market_price_get(symbol: str, *, now: datetime | None = None, strict: bool = False) -> MarketPrice | None:
    """The fresh mark for `symbol`, or None when there is none, it is older than the TTL, or Redis is down
    (`strict`: Redis being down raises instead).

    `symbol` is canonicalized first (ValueError if it cannot be).
    """
    symbol = canonical_symbol(symbol)
    data = MARKET.get(symbol, strict=strict)
    if data is None:
        return None
    mark = _decoded(symbol, data)
    if mark is None:
        return None
    if mark.age(now or timezone.now()) > timedelta(seconds=settings.MARKET_PRICE_TTL):
        return None
    return mark


def market_prices_get(symbols: list[str], *, now: datetime | None = None) -> dict[str, MarketPrice | None]:
    """The fresh mark of each canonical symbol in one round trip (MGET); None where there is none, it is older
    than the TTL, or Redis is down (reports only: the risk check reads its one mark strictly)."""
    now = now or timezone.now()
    found = MARKET.get_many(symbols)
    marks: dict[str, MarketPrice | None] = {}
    for symbol in symbols:
        mark = _decoded(symbol, found[symbol]) if symbol in found else None
        fresh = mark is not None and mark.age(now) <= timedelta(seconds=settings.MARKET_PRICE_TTL)
        marks[symbol] = mark if fresh else None
    return marks
