"""The demo desk's numbers: price random walks, bounded equity walks and order sizes, over `Decimal`.

Pure: no Django, no I/O, no clock. Every draw comes from the `random.Random` passed in, so a seeded simulator
replays the same choices. Amounts are quantized to 8 decimals (the API refuses more).
"""

import math
import random
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

Q8 = Decimal("0.00000001")
ZERO = Decimal(0)


def q8(value: Decimal) -> Decimal:
    """`value` rounded toward zero to 8 decimals."""
    return value.quantize(Q8, rounding=ROUND_DOWN)


def fraction(value: float) -> Decimal:
    """A float draw as a Decimal with 6 decimals (enough for a ratio, exact from then on)."""
    return Decimal(f"{value:.6f}")


@dataclass
class PriceWalk:
    """A geometric random walk kept within [reference / 2, reference * 2] (a demo, not a crash)."""

    reference: Decimal
    price: Decimal
    volatility: float = 0.002  # standard deviation of one step's log return

    def step(self, rng: random.Random) -> Decimal:
        move = fraction(math.exp(rng.gauss(0.0, self.volatility)))
        low, high = self.reference / 2, self.reference * 2
        self.price = q8(min(high, max(low, self.price * move)))
        return self.price


@dataclass
class EquityWalk:
    """An account's equity as a bounded walk around an anchor: anchor x (1 + level), level within +-band.

    The band keeps every account well inside its daily loss and drawdown limits. A `target` anchor (the one
    account that sinks, so the demo's drawdown alert has something to show) is approached by `glide` of the
    anchor a report, never past it."""

    anchor: Decimal
    band: float = 0.015
    level: float = 0.0
    target: Decimal | None = None
    glide: float = 0.02

    def step(self, rng: random.Random) -> Decimal:
        self.level += rng.gauss(0.0, self.band / 4)
        if abs(self.level) > self.band:  # reflect at the edges of the band
            self.level = math.copysign(2 * self.band - abs(self.level), self.level)
            self.level = max(-self.band, min(self.band, self.level))
        if self.target is not None and self.anchor > self.target:
            self.anchor = max(self.target, self.anchor - self.anchor * fraction(self.glide))
        return self.equity

    @property
    def equity(self) -> Decimal:
        return q8(max(ZERO, self.anchor * (1 + fraction(self.level))))


def quantity_for(notional: Decimal, price: Decimal) -> Decimal:
    """The quantity whose notional at `price` is about `notional` (rounded down; zero when too small)."""
    return q8(notional / price) if price > 0 else ZERO


def share(quantity: Decimal, rng: random.Random, low: float = 0.3, high: float = 0.6) -> Decimal:
    """A random share of `quantity` between `low` and `high`, rounded down (may be zero for dust)."""
    return q8(quantity * fraction(rng.uniform(low, high)))


def slipped(price: Decimal, rng: random.Random, spread: float = 0.0005) -> Decimal:
    """An execution price within +-spread of `price`."""
    return q8(price * (1 + fraction(rng.uniform(-spread, spread))))


def fees_for(quantity: Decimal, price: Decimal, rate: Decimal = Decimal("0.001")) -> Decimal:
    """Exchange fees of a fill or close: `rate` of its value."""
    return q8(quantity * price * rate)
