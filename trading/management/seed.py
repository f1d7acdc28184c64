"""Demo data (`python manage.py seed_demo`): users across tiers, their permissions, encrypted broker credentials,
running trading instances with fresh equity reports, bot tokens, and 30 days of positions, fills, trades and daily
statistics over several symbols.

The data is what the services would have written: each instance's `exposure` / `position_count` equal the sum and
count over its pending, approved and open positions; notionals are quantity * price rounded up to 8 decimals and
re-fixed at the fill price; trades add up to their position's realized P&L and fees; daily statistics add up the
trades of their UTC day along one equity curve per instance. Sizes keep every account well inside the default
risk limits (exposure at most 30% of the starting balance, small drawdown and daily loss) and the permissions
generous, so a new position is admitted at once.

Speed (10,000 accounts x 200,000 positions well under two minutes): accounts are built a chunk at a time, all in
one transaction (a failure leaves nothing behind). Account rows (users, permissions, credentials, instances,
tokens) go through bulk_create, so credentials are encrypted by their model field exactly as save() would. The
trading history (about a million rows) is built as plain column dicts and streamed with PostgreSQL COPY
(`copy_rows`): Django's per-value preparation would cost more than the database does. Position ids are taken
from their sequence up front (one query a chunk) so fills and trades can point at them; the database's
constraints still check every row. One password hash serves every demo user; token digests are computed here
(accounts.tokens) and the ApiToken rows bulk-created. Every run adds a fresh batch whose names carry a random
tag, so re-running on a populated database never collides.
"""

import io
import itertools
import json
import random
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal
from pathlib import Path
from typing import Any

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import connection, models, transaction
from django.utils import timezone

from accounts.models import (
    ApiToken,
    BrokerCredential,
    InstanceStatus,
    SubscriptionTier,
    TokenKind,
    TradingInstance,
    User,
    UserPermission,
)
from accounts.roles import ROLES
from accounts.tiers import tier_defaults
from accounts.tokens import PREFIX_LENGTH, generate_raw_token, token_digest
from trading.fingerprints import check_fingerprint
from trading.models import EXPOSURE_STATUSES, DailyStatistic, Fill, Position, PositionStatus, Side, Trade

Q8 = Decimal("0.00000001")
ZERO = Decimal("0")
HISTORY_DAYS = 30
CHUNK_ACCOUNTS = 1000
BATCH_SIZE = 5000

# (tier, weight, starting balance range in USD)
TIERS = (
    (SubscriptionTier.FREE, 40, (1_000, 5_000)),
    (SubscriptionTier.BASIC, 30, (5_000, 50_000)),
    (SubscriptionTier.PRO, 20, (50_000, 500_000)),
    (SubscriptionTier.ENTERPRISE, 10, (500_000, 5_000_000)),
)
# The first demo account (accounts[0] of the tokens file, the README's walkthrough account) is of this tier.
WALKTHROUGH_TIER = SubscriptionTier.PRO
# symbol -> (reference price, weight)
SYMBOLS = {
    "BTC-USD": (64_000, 30),
    "ETH-USD": (3_200, 25),
    "SOL-USD": (150, 15),
    "XRP-USD": (0.55, 8),
    "ADA-USD": (0.45, 6),
    "DOGE-USD": (0.12, 6),
    "AVAX-USD": (35, 5),
    "LINK-USD": (15, 5),
}
STATUSES = (
    (PositionStatus.CLOSED, 60),
    (PositionStatus.OPEN, 20),
    (PositionStatus.REJECTED, 8),
    (PositionStatus.CANCELLED, 5),
    (PositionStatus.EXPIRED, 5),
    (PositionStatus.PENDING_APPROVAL, 1),
    (PositionStatus.APPROVED, 1),
)
BROKERS = ("coinbase", "kraken", "binance_us")
# Sizing against the starting balance, inside the default limits of docs/design.md (max_position_pct 0.20,
# max_account_exposure_pct 0.90, approval_threshold 25000, reservation_ttl 120 s, approval_ttl 15 min).
EXPOSURE_BUDGET = 0.30
POSITION_FRACTION = (0.01, 0.04)
REJECTED_FRACTION = Decimal("0.3")
MAX_POSITION_PCT = Decimal("0.2")
APPROVAL_THRESHOLD = Decimal("25000")
RESERVATION_TTL = timedelta(seconds=120)
APPROVAL_TTL = timedelta(minutes=15)
TAKER_FEE = Decimal("0.001")
REJECTION_MESSAGE = "The position is larger than the account's maximum position size."


@dataclass(frozen=True)
class SeedResult:
    tag: str
    operator_username: str
    operator_token: str
    accounts: list[dict]
    counts: dict[str, int]
    seconds: float


@dataclass
class _Account:
    """One demo account: unsaved account models, linked by object so bulk_create fills their foreign keys, and
    its trading history as column dicts (instance and position ids are filled in at write time)."""

    user: User
    permission: UserPermission
    credential: BrokerCredential
    instance: TradingInstance
    token: ApiToken | None = None
    raw_token: str = ""
    positions: list[dict] = field(default_factory=list)
    fills: list[dict] = field(default_factory=list)
    trades: list[dict] = field(default_factory=list)
    statistics: list[dict] = field(default_factory=list)


def seed_demo(*, accounts: int, positions: int, tokens_out: Path, seed: int | None = None) -> SeedResult:
    """Create `accounts` demo accounts sharing `positions` positions; write their raw tokens to `tokens_out`."""
    started = time.monotonic()
    builder = _Builder(
        rng=random.Random(seed),  # noqa: S311 - demo data; tokens come from `secrets`
        now=timezone.now(),
        tag=secrets.token_hex(3),
    )
    counts = {"accounts": 0, "positions": 0, "fills": 0, "trades": 0, "daily_statistics": 0}
    written: list[dict] = []
    with transaction.atomic():
        for first, sizes in _chunks(accounts, positions):
            built = [builder.account(first + offset, size) for offset, size in enumerate(sizes)]
            _write_accounts(built)
            _write_history(built, builder.now, counts)
            written.extend({"id": item.instance.pk, "token": item.raw_token} for item in built)
        operator, operator_token = _write_operator(builder)
        _write_tokens_file(tokens_out, {"operator_token": operator_token, "accounts": written})
    return SeedResult(
        tag=builder.tag,
        operator_username=operator.username,
        operator_token=operator_token,
        accounts=written,
        counts=counts,
        seconds=time.monotonic() - started,
    )


def _chunks(accounts: int, positions: int) -> Iterator[tuple[int, list[int]]]:
    """(index of the chunk's first account, positions of each account in it); positions spread evenly."""
    per_account, remainder = divmod(positions, accounts)
    sizes = [per_account + (1 if index < remainder else 0) for index in range(accounts)]
    for first in range(0, accounts, CHUNK_ACCOUNTS):
        yield first, sizes[first : first + CHUNK_ACCOUNTS]


def _write_accounts(built: Sequence[_Account]) -> None:
    """Account rows in foreign-key order: each bulk_create sets the primary keys the next one needs."""
    User.objects.bulk_create([item.user for item in built], batch_size=BATCH_SIZE)
    UserPermission.objects.bulk_create([item.permission for item in built], batch_size=BATCH_SIZE)
    # bulk_create prepares values through EncryptedTextField.get_prep_value: the columns hold ciphertext.
    BrokerCredential.objects.bulk_create([item.credential for item in built], batch_size=BATCH_SIZE)
    TradingInstance.objects.bulk_create([item.instance for item in built], batch_size=BATCH_SIZE)
    ApiToken.objects.bulk_create([item.token for item in built], batch_size=BATCH_SIZE)


def _write_history(built: Sequence[_Account], now: datetime, counts: dict[str, int]) -> None:
    """Positions (ids reserved from their sequence), then fills, trades and daily statistics, each one COPY."""
    ids = iter(_reserve_ids(Position, sum(len(item.positions) for item in built)))
    for item in built:
        for row in item.positions:
            row["id"] = next(ids)
        for row in (*item.positions, *item.fills, *item.trades, *item.statistics):
            row["instance_id"] = item.instance.pk
    for row in (row for item in built for row in (*item.fills, *item.trades)):
        row["position_id"] = row.pop("position")["id"]
    for model, attribute in (
        (Position, "positions"),
        (Fill, "fills"),
        (Trade, "trades"),
        (DailyStatistic, "statistics"),
    ):
        rows = [row for item in built for row in getattr(item, attribute)]
        copy_rows(model, rows, now=now)
        counts["daily_statistics" if model is DailyStatistic else attribute] += len(rows)
    counts["accounts"] += len(built)


def _reserve_ids(model: type[models.Model], count: int) -> list[int]:
    """`count` fresh primary keys from the model's id sequence (one query)."""
    if not count:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]


def copy_rows(model: type[models.Model], rows: Sequence[dict], *, now: datetime) -> None:
    """Insert `rows` (dicts keyed by field attname) with one COPY. A missing field takes its model default;
    `created_at` defaults to `now` and `updated_at` is `now`; `id` is sent only when the rows carry one."""
    if not rows:
        return
    fields = [f for f in model._meta.concrete_fields if f.attname != "id" or "id" in rows[0]]
    defaults = {f.attname: f.get_default() for f in fields} | {"created_at": now, "updated_at": now}
    columns = [(f.attname, defaults[f.attname], _copy_converter(f)) for f in fields]
    buffer = io.StringIO()
    for row in rows:
        cells = [
            NULL if (value := row.get(name, default)) is None else convert(value) for name, default, convert in columns
        ]
        buffer.write("\t".join(cells))
        buffer.write("\n")
    buffer.seek(0)
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        cursor.copy_expert(f"COPY {connection.ops.quote_name(model._meta.db_table)} ({names}) FROM STDIN", buffer)


NULL = r"\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_converter(model_field: models.Field) -> Callable[[Any], str]:
    """How one column's non-null values are written in PostgreSQL's COPY text format."""
    if isinstance(model_field, models.BooleanField):
        return lambda value: "t" if value else "f"
    if isinstance(model_field, models.JSONField):
        return lambda value: json.dumps(value).translate(_ESCAPES)
    if isinstance(model_field, models.DateField):  # DateTimeField included
        return lambda value: value.isoformat()
    if isinstance(model_field, models.CharField | models.TextField):
        return lambda value: value.translate(_ESCAPES)
    return str  # numbers: Decimal's str (exponent form included) is valid numeric input


def _write_operator(builder: "_Builder") -> tuple[User, str]:
    """A staff operator (holding every operator role that exists) with one operator token."""
    operator = User.objects.create(
        username=f"demo-{builder.tag}-operator",
        email=f"demo-{builder.tag}-operator@demo.nija.invalid",
        password=builder.password_hash,
        is_staff=True,
        subscription_tier=SubscriptionTier.ENTERPRISE,
    )
    operator.groups.add(*Group.objects.filter(name__in=ROLES))
    raw_token = generate_raw_token()
    ApiToken.objects.create(
        kind=TokenKind.OPERATOR,
        user=operator,
        name="demo operator token",
        digest=token_digest(raw_token),
        prefix=raw_token[:PREFIX_LENGTH],
    )
    return operator, raw_token


def _write_tokens_file(path: Path, payload: dict) -> None:
    """The raw tokens, readable by the owner only (they are stored nowhere else)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps(payload, indent=1))


def _q8(value: Decimal, rounding: str = ROUND_DOWN) -> Decimal:
    return value.quantize(Q8, rounding=rounding)


def _notional(quantity: Decimal, price: Decimal) -> Decimal:
    """n = quantity * price, rounded up to 8 decimals (docs/design.md, Risk semantics)."""
    return _q8(quantity * price, ROUND_UP)


def _average(cost: Decimal, quantity: Decimal) -> Decimal:
    """The entry price shown for an open cost: cost / quantity, half-even to 8 decimals."""
    return _q8(cost / quantity, ROUND_HALF_EVEN)


def _price(reference: float, factor: float) -> Decimal:
    """A price near `reference`, with the tick size an exchange would use for it."""
    places = 2 if reference >= 10 else 5
    return Decimal(f"{reference * factor:.{places}f}")


def _fraction(value: float) -> Decimal:
    return Decimal(f"{value:.6f}")


def _total(values: Iterable[Decimal]) -> Decimal:
    return sum(values, ZERO)


class _Builder:
    """Builds one account at a time from one seeded random generator."""

    def __init__(self, *, rng: random.Random, now: datetime, tag: str) -> None:
        self.rng = rng
        self.now = now
        self.tag = tag
        self.today = now.astimezone(UTC).date()
        # One hash for every demo user (the default hasher costs ~0.5 s a hash). Nobody knows this password.
        self.password_hash = make_password(secrets.token_urlsafe(24))

    def account(self, index: int, position_count: int) -> _Account:
        tier, balance_range = self._tier(index)
        starting = Decimal(self.rng.randint(*balance_range))
        user = self._user(index, tier)
        credential = self._credential(user)
        instance = TradingInstance(
            user=user,
            broker_credential=credential,
            name=f"{user.username}-bot",
            status=InstanceStatus.RUNNING,
            is_active=True,
            starting_balance=starting,
            day_start_date=self.today,
            last_heartbeat=self.now,
            equity_reported_at=self.now,
            equity_accepted_at=self.now,
        )
        account = _Account(
            user=user, permission=self._permission(user, tier, starting), credential=credential, instance=instance
        )
        _HistoryBuilder(self, account, starting).build(position_count)
        self._equity_curve(account, starting)
        self._counters(account)
        self._token(account)
        return account

    def _tier(self, index: int) -> tuple[str, tuple[int, int]]:
        """A tier drawn by weight; the first account is always WALKTHROUGH_TIER (the README's bot walkthrough
        checks 0.01 BTC with it, which a free account's 20 % of 1,000-5,000 of equity would reject)."""
        tier, _, balance_range = self.rng.choices(TIERS, weights=[weight for _, weight, _ in TIERS])[0]
        if index == 0:
            tier, _, balance_range = next(row for row in TIERS if row[0] == WALKTHROUGH_TIER)
        return tier, balance_range

    def _user(self, index: int, tier: str) -> User:
        username = f"demo-{self.tag}-{index:05d}"
        return User(
            username=username,
            email=f"{username}@demo.nija.invalid",
            password=self.password_hash,
            subscription_tier=tier,
            date_joined=self.now - timedelta(days=HISTORY_DAYS + 1),
        )

    def _credential(self, user: User) -> BrokerCredential:
        broker = self.rng.choice(BROKERS)
        api_key = f"{self.rng.getrandbits(128):032x}"
        return BrokerCredential(
            user=user,
            broker=broker,
            label="main",
            api_key=api_key,
            api_secret=f"{self.rng.getrandbits(256):064x}",
            passphrase=f"{self.rng.getrandbits(64):016x}" if broker == "coinbase" else None,
            api_key_last4=api_key[-4:],
        )

    @staticmethod
    def _permission(user: User, tier: str, starting: Decimal) -> UserPermission:
        """The tier's defaults, raised so that a benchmark's new positions are admitted."""
        defaults = tier_defaults(tier)
        return UserPermission(
            user=user,
            can_trade=True,
            max_position_size=max(defaults.max_position_size, starting / 4),
            max_daily_loss=max(defaults.max_daily_loss, starting / 10),
            max_open_positions=max(defaults.max_open_positions, 1000),
            allowed_symbols=[],
        )

    def _equity_curve(self, account: _Account, starting: Decimal) -> None:
        """Daily statistics of the last 30 UTC days from the trades, then today's equity figures."""
        by_day: dict[date, list[Decimal]] = {}
        for trade in account.trades:
            by_day.setdefault(trade["closed_at"].astimezone(UTC).date(), []).append(trade["pnl"])
        equity = peak = starting
        for days_ago in range(HISTORY_DAYS, 0, -1):
            day = self.today - timedelta(days=days_ago)
            statistic, equity, peak = self._day(day, equity, peak, by_day.get(day, []))
            account.statistics.append(statistic)
        instance = account.instance
        instance.day_start_equity = equity
        instance.equity = max(ZERO, equity + _total(by_day.get(self.today, [])) + self._drift(equity))
        instance.peak_equity = max(peak, instance.equity)

    def _day(self, day: date, start: Decimal, peak: Decimal, pnls: list[Decimal]) -> tuple[dict, Decimal, Decimal]:
        """One DailyStatistic row; returns it with the day's end equity and the running peak."""
        realized = _total(pnls)
        end = max(ZERO, start + realized + self._drift(start))
        peak = max(peak, start, end)
        statistic = {
            "date": day,
            "start_equity": start,
            "end_equity": end,
            "realized_pnl": realized,
            "trades": len(pnls),
            "wins": sum(1 for pnl in pnls if pnl > 0),
            "losses": sum(1 for pnl in pnls if pnl < 0),
            "gross_profit": _total(pnl for pnl in pnls if pnl > 0),
            "gross_loss": -_total(pnl for pnl in pnls if pnl < 0),
            "max_drawdown": _q8((peak - min(start, end)) / peak) if peak else ZERO,
            "created_at": datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC),
        }
        return statistic, end, peak

    def _drift(self, equity: Decimal) -> Decimal:
        """The day's unrealized change: a small move of the marks (about 0.2% of equity)."""
        return _q8(equity * _fraction(self.rng.gauss(0.0002, 0.002)))

    @staticmethod
    def _counters(account: _Account) -> None:
        """The risk counters exactly as the services keep them: over pending, approved and open positions."""
        held = [row for row in account.positions if row["status"] in EXPOSURE_STATUSES]
        instance = account.instance
        instance.exposure = _total(row["notional"] for row in held)
        instance.position_count = len(held)
        instance.cash_balance = max(ZERO, instance.equity - instance.exposure)

    @staticmethod
    def _token(account: _Account) -> None:
        account.raw_token = generate_raw_token()
        account.token = ApiToken(
            kind=TokenKind.BOT,
            user=account.user,
            instance=account.instance,
            name="demo bot token",
            digest=token_digest(account.raw_token),
            prefix=account.raw_token[:PREFIX_LENGTH],
        )


class _HistoryBuilder:
    """The positions of one account with their fills and trades, sized against its starting balance."""

    def __init__(self, builder: _Builder, account: _Account, starting: Decimal) -> None:
        self.rng = builder.rng
        self.now = builder.now
        self.tag = builder.tag
        self.account = account
        self.starting = starting
        self.sequence = 0
        self.held_fraction_max = POSITION_FRACTION[1]

    def build(self, count: int) -> None:
        statuses = self.rng.choices([s for s, _ in STATUSES], weights=[w for _, w in STATUSES], k=count)
        held = sum(1 for status in statuses if status in EXPOSURE_STATUSES)
        # However many positions are held, their notionals stay within EXPOSURE_BUDGET of the starting balance.
        self.held_fraction_max = min(POSITION_FRACTION[1], EXPOSURE_BUDGET / max(held, 1))
        for status in statuses:
            self.sequence += 1
            self.account.positions.append(self._position(status))

    def _position(self, status: str) -> dict:
        symbol = self.rng.choices(SYMBOL_NAMES, cum_weights=SYMBOL_CUMULATIVE_WEIGHTS)[0]
        price = _price(SYMBOLS[symbol][0], self.rng.uniform(0.9, 1.1))
        quantity = _q8(self.starting * self._size(status) / price)
        notional = _notional(quantity, price)
        if status == PositionStatus.PENDING_APPROVAL and notional < APPROVAL_THRESHOLD:
            status = PositionStatus.APPROVED  # a check below the approval threshold is approved at once
        row = {
            "symbol": symbol,
            "side": Side.LONG if self.rng.random() < 0.7 else Side.SHORT,
            "quantity": quantity,
            "requested_price": price,
            "notional": notional,
            "status": status,
            "client_order_id": f"demo-{self.sequence:06d}",
        }
        row["request_fingerprint"] = _fingerprint(row)
        # What the risk check decided and reserved (fills later re-fix `notional`, never these).
        row["checked_notional"] = notional
        row["check_decision"] = _CHECK_DECISION.get(status, PositionStatus.APPROVED)
        getattr(self, f"_as_{status}")(row)
        if row["check_decision"] == PositionStatus.APPROVED:
            row["approved_at"] = row["decided_at"]
        return row

    def _size(self, status: str) -> Decimal:
        """The notional as a fraction of the starting balance."""
        if status == PositionStatus.REJECTED:
            return REJECTED_FRACTION  # over max_position_pct: why it was rejected
        if status in EXPOSURE_STATUSES:
            high = self.held_fraction_max
            return _fraction(self.rng.uniform(high * POSITION_FRACTION[0] / POSITION_FRACTION[1], high))
        return _fraction(self.rng.uniform(*POSITION_FRACTION))

    def _decided(self, row: dict, at: datetime) -> None:
        row["created_at"] = at
        row["decided_at"] = at

    def _past(self) -> datetime:
        return self.now - timedelta(seconds=self.rng.uniform(60, HISTORY_DAYS * 86_400))

    def _as_rejected(self, row: dict) -> None:
        self._decided(row, self._past())
        limit = _q8(self.starting * MAX_POSITION_PCT)
        row["reasons"] = [
            {
                "code": "max_position_size",
                "message": REJECTION_MESSAGE,
                "limit": str(limit),
                "value": str(row["notional"]),
                "scope": "account",
            }
        ]
        row["decision_reason"] = REJECTION_MESSAGE

    def _as_cancelled(self, row: dict) -> None:
        self._decided(row, self._past())
        row["reservation_expires_at"] = row["created_at"] + RESERVATION_TTL

    def _as_expired(self, row: dict) -> None:
        self._as_cancelled(row)

    def _as_pending_approval(self, row: dict) -> None:
        row["created_at"] = self.now - timedelta(seconds=self.rng.uniform(10, 600))
        row["reservation_expires_at"] = row["created_at"] + APPROVAL_TTL

    def _as_approved(self, row: dict) -> None:
        self._decided(row, self.now - timedelta(seconds=self.rng.uniform(1, 30)))
        row["reservation_expires_at"] = row["created_at"] + RESERVATION_TTL

    def _as_open(self, row: dict) -> None:
        self._fill(row, opened=self.now - timedelta(seconds=self.rng.uniform(60, 3 * 86_400)))

    def _as_closed(self, row: dict) -> None:
        closed = self.now - timedelta(seconds=self.rng.uniform(0, HISTORY_DAYS * 86_400 - 3_600))
        opened = closed - timedelta(seconds=self.rng.uniform(300, 2 * 86_400))
        self._fill(row, opened)
        self._close(row, opened, closed)

    def _fill(self, row: dict, opened: datetime) -> None:
        """One fill of the whole quantity near the requested price; the notional is re-fixed at the fill price."""
        self._decided(row, opened - timedelta(seconds=self.rng.uniform(1, 30)))
        entry = _price(float(row["requested_price"]), self.rng.uniform(0.999, 1.001))
        notional = _notional(row["quantity"], entry)
        fees = _q8(notional * (TAKER_FEE if self.rng.random() < 0.9 else -TAKER_FEE / 10))  # or a maker rebate
        row.update(filled_quantity=row["quantity"], notional=notional, opened_at=opened, fees=fees)
        # The books of what is open (the fill's value and fees); the entry price shown is their average.
        row.update(open_cost=notional, open_entry_fees=fees, entry_price=_average(notional, row["quantity"]))
        self.account.fills.append(
            {
                "position": row,
                "exchange_order_id": f"demo-{self.tag}-{self.sequence:06d}",
                "quantity": row["quantity"],
                "price": entry,
                "fees": fees,
                "filled_at": opened,
                "created_at": opened,
            }
        )

    def _close(self, row: dict, opened: datetime, closed: datetime) -> None:
        """A close of everything, or (30%) a partial close first: one Trade each, booked as the risk services book
        them (each takes its share of the open cost and entry fees, the last one the remainder)."""
        quantity = row["quantity"]
        parts = [(quantity, closed)]
        if self.rng.random() < 0.3:
            first = _q8(quantity * _fraction(self.rng.uniform(0.3, 0.7)))
            if 0 < first < quantity:
                parts = [(first, opened + (closed - opened) * self.rng.uniform(0.3, 0.9)), (quantity - first, closed)]
        trades = [self._trade(row, part, at, number) for number, (part, at) in enumerate(parts)]
        row.update(
            closed_quantity=quantity,
            exit_price=_q8(_total(t["exit_price"] * t["quantity"] for t in trades) / quantity),
            realized_pnl=_total(t["pnl"] for t in trades),
            fees=row["fees"] + _total(t["fees"] for t in trades),
            closed_at=closed,
        )
        self.account.trades.extend(trades)

    def _trade(self, row: dict, quantity: Decimal, at: datetime, number: int) -> dict:
        move = min(max(self.rng.gauss(0.001, 0.02), -0.2), 0.2)
        exit_price = _price(float(row["entry_price"]), 1 + move)
        fees = _q8(quantity * exit_price * TAKER_FEE)
        direction = 1 if row["side"] == Side.LONG else -1
        open_quantity = row["quantity"] - row.get("closed_quantity", ZERO)
        cost, entry_fees = row["open_cost"], row["open_entry_fees"]
        average = _average(cost, open_quantity)
        if quantity < open_quantity:
            cost, entry_fees = _q8(cost * quantity / open_quantity), _q8(entry_fees * quantity / open_quantity)
        row.update(
            closed_quantity=row.get("closed_quantity", ZERO) + quantity,
            open_cost=row["open_cost"] - cost,
            open_entry_fees=row["open_entry_fees"] - entry_fees,
        )
        return {
            "position": row,
            "symbol": row["symbol"],
            "side": row["side"],
            "quantity": quantity,
            "entry_price": average,
            "exit_price": exit_price,
            "pnl": (_notional(quantity, exit_price) - cost) * direction - fees - entry_fees,
            "fees": fees,
            "client_close_id": f"demo-close-{self.sequence:06d}-{number}",
            "closed_at": at,
            "created_at": at,
        }


SYMBOL_NAMES = list(SYMBOLS)
SYMBOL_CUMULATIVE_WEIGHTS = list(itertools.accumulate(weight for _, weight in SYMBOLS.values()))


_CHECK_DECISION = {
    PositionStatus.REJECTED: PositionStatus.REJECTED,
    PositionStatus.PENDING_APPROVAL: PositionStatus.PENDING_APPROVAL,
}


def _fingerprint(row: dict) -> str:
    """The check's own fingerprint of the body that would have made this position (trading.fingerprints): a
    seeded position's retry (same client_order_id, same body) is answered as a replay, not 409."""
    return check_fingerprint(
        symbol=row["symbol"],
        side=row["side"],
        quantity=row["quantity"],
        price=row["requested_price"],
        reduce_only=False,
        position_id=None,
    )
