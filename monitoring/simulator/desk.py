"""The living demo desk: a price feed and a few bots driving the demo accounts through the public HTTP API.

Each iteration is one step (about one request; the client paces them):
- every `price_every`-th step moves the next symbol's price (a random walk, PUT /api/market/{symbol} with the
  operator token; a symbol's first step starts from its fresh mark when there is one);
- the other steps give the next bot a turn (round robin). A bot's first turn reads its account (and adopts its
  open and approved positions); then every `report_every`-th turn reads its account and reports its equity (a
  bounded walk that follows an operator's deposits and withdrawals: the heartbeat and the equity figure), and
  the other turns do one weighted thing it can: a check (now and then one above the approval threshold, held
  pending for an operator, and now and then one past max_position_pct that a limit rejects), a whole or partial
  fill, a whole or partial close, a cancel of an unfilled rest, a poll of its pending position, or a plain read.

It never trips an emergency halt by itself: equity moves stay within `band` of each account's first figure, and
the one account that sinks (so the demo drawdown alert fires) is a small one and stops well short of the
drawdown limits. When an operator halts an account its checks come back rejected: logged, and the desk goes
on. No answer (the web server restarting) or a 4xx is logged and the desk goes on too.

Deterministic for a given `seed` and the same answers: every choice is drawn from one seeded generator.
No Django here: the command passes in everything it needs.
"""

import random
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog

from monitoring.simulator.client import Answer, DeskClient
from monitoring.simulator.walks import (
    EquityWalk,
    PriceWalk,
    fees_for,
    fraction,
    q8,
    quantity_for,
    share,
    slipped,
)

logger = structlog.get_logger(__name__)

TERMINAL = frozenset({"closed", "rejected", "expired", "cancelled"})
FORGET_ON = frozenset({400, 404, 409})
# An unfilled rest is filled or cancelled only while its reservation holds, with this margin: past its deadline the
# server releases it, and a fill then would be a fill after release (a warning event), which a careful bot avoids.
RESERVATION_MARGIN = timedelta(seconds=10)
TOKENS_RETRY_SECONDS = 30.0
TOKENS_HINT = (
    "The operator token of the demo tokens file is refused: the file is from another database. Delete it "
    "(var/demo-tokens.json) and run make run again to seed a fresh demo batch."
)
ADOPT_STATUSES = "open,approved,pending_approval"


@dataclass(frozen=True)
class DeskConfig:
    base_url: str
    operator_token: str
    accounts: tuple[tuple[int, str], ...]  # (account id, bot token)
    reference_prices: dict[str, Decimal]
    seed: int | None = None
    rate: float = 4.0  # requests a second, all bots and the feed together (0: unpaced)
    iterations: int | None = None
    duration: float | None = None  # seconds
    price_every: int = 3
    report_every: int = 3
    max_positions: int = 5  # per bot, held by the desk at once (adopted ones included)
    max_pending: int = 3  # approvals the desk asked for and leaves waiting at once, over every bot
    band: float = 0.015  # equity moves within +-band of an account's first figure
    sink_drawdown: float = 0.12  # the sinking account's drawdown target (capped by the limits in force)
    summary_every: float = 30.0  # seconds between summary log lines


@dataclass
class Tracked:
    """A position the desk follows, as the API last described it."""

    id: int
    symbol: str
    side: str
    status: str
    quantity: Decimal
    filled: Decimal = Decimal(0)
    closed: Decimal = Decimal(0)
    own: bool = False  # checked by this run of the desk (not adopted)
    expires_at: datetime | None = None  # the reservation's deadline (None: nothing reserved)

    @property
    def open_quantity(self) -> Decimal:
        return self.filled - self.closed

    @property
    def unfilled(self) -> Decimal:
        """The rest of the order still reserved (zero once the reservation's deadline is near or past)."""
        if self.expires_at is None or datetime.now(UTC) >= self.expires_at - RESERVATION_MARGIN:
            return Decimal(0)
        return self.quantity - self.filled

    def update(self, body: dict) -> None:
        self.status = body["status"]
        self.quantity = Decimal(body["quantity"])
        self.filled = Decimal(body["filled_quantity"])
        self.closed = Decimal(body["closed_quantity"])
        # A released rest (a halt, the watchdog) is no longer reserved, whatever its old deadline says.
        released = body.get("unfilled_released_at") is not None
        self.expires_at = None if released else _instant(body.get("reservation_expires_at"))

    @classmethod
    def from_json(cls, body: dict) -> "Tracked":
        tracked = cls(body["id"], body["symbol"], body["side"], body["status"], Decimal(body["quantity"]))
        tracked.update(body)
        return tracked


@dataclass
class Bot:
    account_id: int
    token: str
    walk: EquityWalk | None = None  # None until its account was read
    peak: Decimal = Decimal(0)
    positions: dict[int, Tracked] = field(default_factory=dict)
    turns: int = 0
    offset: int = 0  # staggers the bots' equity reports over the rounds
    stopped: bool = False  # its account or the portfolio is halted or reducing: no fills, no cancels
    books: tuple[Decimal, Decimal] | None = None  # (equity, start-of-day equity) as the server last answered

    @property
    def equity(self) -> Decimal:
        return self.walk.equity if self.walk else Decimal(0)

    def held(self, *statuses: str) -> list[Tracked]:
        return [position for position in self.positions.values() if position.status in statuses]


@dataclass(frozen=True)
class DeskLimits:
    """The portfolio default limits the desk sizes its orders against (GET /api/risk/status)."""

    approval_threshold: Decimal
    max_position_pct: Decimal
    max_drawdown_pct: Decimal
    emergency_drawdown_pct: Decimal

    @classmethod
    def from_json(cls, body: dict) -> "DeskLimits":
        limits = body["limits"]["default"]
        return cls(*(Decimal(str(limits[name])) for name in cls.__dataclass_fields__))


class DeskSimulator:
    """The desk: `run()` steps until done; `step()` is one iteration (tests drive it step by step)."""

    def __init__(self, config: DeskConfig, *, client: DeskClient | None = None) -> None:
        self.config = config
        self.rng = random.Random(config.seed)  # noqa: S311 - a demo's choices, not secrets
        self.client = client or DeskClient(config.base_url, rate=config.rate)
        self.bots = [
            Bot(account_id, token, offset=index % config.report_every)
            for index, (account_id, token) in enumerate(config.accounts)
        ]
        self.prices: dict[str, PriceWalk] = {}
        self.symbols = sorted(config.reference_prices)
        self.limits: DeskLimits | None = None
        self.stats: Counter = Counter()
        self.iteration = 0
        self._turn = 0
        self._tag = secrets.token_hex(4)  # client ids unique per run (a rerun must not replay the last one's)
        self._ids = 0
        self._sink_chosen = False
        self._deadline = time.monotonic() + config.duration if config.duration is not None else None
        self.client.deadline = self._deadline
        self._summary_at = time.monotonic() + config.summary_every

    # ------------------------------------------------------------------------------------------ the loop
    def run(self) -> Counter:
        """Step until the iterations or the duration are used up (forever when neither is set)."""
        logger.info("simulator.start", accounts=len(self.bots), symbols=len(self.symbols), rate=self.config.rate)
        try:
            while not self._done():
                self.step()
        finally:
            self.client.close()
            logger.info("simulator.stop", iterations=self.iteration, **self._summary())
        return self.stats

    def step(self) -> None:
        """One iteration: read the limits first, then a price move or a bot's turn."""
        if self.limits is None:
            self._read_limits()
        elif self.iteration % self.config.price_every == 0:
            self._move_price(self.symbols[(self.iteration // self.config.price_every) % len(self.symbols)])
        else:
            self._bot_turn(self.bots[self._turn % len(self.bots)])
            self._turn += 1
        self.iteration += 1
        self._log_summary()

    def _done(self) -> bool:
        if self.config.iterations is not None and self.iteration >= self.config.iterations:
            return True
        return self._deadline is not None and time.monotonic() >= self._deadline

    # ------------------------------------------------------------------------------------------ operator and feed
    def _read_limits(self) -> None:
        answer = self._operator("GET", "/api/risk/status")
        if answer is not None and answer.ok:
            self.limits = DeskLimits.from_json(answer.body)
            logger.info("simulator.limits", **{name: str(value) for name, value in vars(self.limits).items()})
        elif answer is not None and answer.status in (401, 403):
            # Tokens of another database (it was reset, the file was not): say so, then ask again slowly. The
            # desk does not exit: honcho would stop every other process with it.
            logger.error("simulator.tokens_refused", status=answer.status, hint=TOKENS_HINT)
            self.client.pause(TOKENS_RETRY_SECONDS)

    def _move_price(self, symbol: str) -> None:
        walk = self.prices.get(symbol) or self._first_price(symbol)
        price = walk.step(self.rng)
        answer = self._operator("PUT", f"/api/market/{symbol}", {"price": price})
        if answer is not None and answer.ok:
            self.stats["marks"] += 1

    def _first_price(self, symbol: str) -> PriceWalk:
        """The walk starts at the symbol's fresh mark (a restarted desk goes on from there), else its reference."""
        reference = self.config.reference_prices[symbol]
        answer = self._operator("GET", f"/api/market/{symbol}", expected=404)  # 404: no fresh mark yet
        price = Decimal(answer.body["price"]) if answer is not None and answer.status == 200 else reference
        walk = PriceWalk(reference=reference, price=min(reference * 2, max(reference / 2, price)))
        self.prices[symbol] = walk
        return walk

    def _mark(self, symbol: str) -> Decimal:
        walk = self.prices.get(symbol)
        return walk.price if walk else self.config.reference_prices[symbol]

    # ------------------------------------------------------------------------------------------ a bot's turn
    def _bot_turn(self, bot: Bot) -> None:
        if bot.walk is None:
            self._adopt(bot)
            return
        bot.turns += 1
        if (bot.turns + bot.offset) % self.config.report_every == 0:
            self._report_equity(bot)
            return
        actions = self._actions(bot)
        names = list(actions)
        chosen = self.rng.choices(names, weights=[actions[name] for name in names])[0]
        getattr(self, f"_{chosen}")(bot)

    def _actions(self, bot: Bot) -> dict[str, float]:
        """What this bot can do now, with weights."""
        live = [p for p in bot.positions.values() if p.status not in TERMINAL]
        actions = {"read": 1.0, "reject_check": 0.5}
        if len(live) < self.config.max_positions:
            actions["check"] = 4.0
            if self._can_ask_approval(bot):
                actions["approval_check"] = 2.0
        fillable = not bot.stopped and any(p.status in ("approved", "open") and p.unfilled > 0 for p in live)
        if fillable:
            actions["fill"] = 8.0  # an approved reservation is filled soon, as an exchange would
        if any(p.status == "open" and p.open_quantity > 0 for p in live):
            actions["close"] = 4.0
        if fillable and any(p.status in ("approved", "open") and p.unfilled > 0 and p.open_quantity == 0 for p in live):
            actions["cancel"] = 0.5
        if bot.held("pending_approval"):
            actions["poll"] = 2.0
        return actions

    def _adopt(self, bot: Bot) -> None:
        """Read the account (its equity starts the walk) and its open, approved and pending positions."""
        answer = self._bot(bot, "GET", f"/api/accounts/{bot.account_id}")
        if answer is None or not answer.ok:
            return
        equity, peak = Decimal(answer.body["equity"]), Decimal(answer.body["peak_equity"])
        bot.walk, bot.peak = EquityWalk(anchor=equity, band=self.config.band), max(peak, equity)
        bot.stopped = answer.body["state"] != "active"
        self._resync(bot)
        self.stats["accounts_read"] += 1
        self._choose_sink()

    def _resync(self, bot: Bot) -> None:
        """Follow exactly the bot's open, approved and pending positions as the API lists them now (the first
        page): on its first turn, and when it finds its account stopped (a halt cancelled its reservations)."""
        query = f"/api/positions?status={ADOPT_STATUSES}&account_id={bot.account_id}&page_size=50"
        listed = self._bot(bot, "GET", query)
        if listed is None or not listed.ok:
            return
        own = {position.id for position in bot.positions.values() if position.own}
        bot.positions = {
            body["id"]: Tracked.from_json(body) for body in listed.body["results"] if body["symbol"] in self.symbols
        }
        for position_id in own & bot.positions.keys():
            bot.positions[position_id].own = True

    def _stopped(self, bot: Bot, stopped: bool) -> None:
        """The account's trading state as the API just told it: halted or reducing stops its fills and cancels
        (its reservations were cancelled); on the change to stopped, what it follows is read again."""
        was_stopped, bot.stopped = bot.stopped, stopped
        if stopped and not was_stopped:
            logger.info("simulator.account_stopped", account_id=bot.account_id)
            self._resync(bot)

    def _choose_sink(self) -> None:
        """Once every bot has read its account: the smallest account, if it holds at most 5 % of the desk's
        equity, sinks to `sink_drawdown` below its peak (within half the emergency drawdown and below the
        drawdown limit), so the demo drawdown alert fires while the portfolio barely moves."""
        if self._sink_chosen or any(bot.walk is None for bot in self.bots) or self.limits is None:
            return
        self._sink_chosen = True
        total = sum(bot.equity for bot in self.bots)
        smallest = min(self.bots, key=lambda bot: bot.equity)
        if len(self.bots) < 4 or smallest.equity > total * Decimal("0.05"):
            return
        drawdown = min(
            fraction(self.config.sink_drawdown),
            self.limits.emergency_drawdown_pct / 2,
            self.limits.max_drawdown_pct * Decimal("0.9"),
        )
        smallest.walk.target = q8(smallest.peak * (1 - drawdown))  # type: ignore[union-attr]
        logger.info("simulator.sinking_account", account_id=smallest.account_id, target=str(smallest.walk.target))

    def _report_equity(self, bot: Bot) -> None:
        """Read the account (a transfer may have moved it), then report the walk's next equity."""
        read = self._bot(bot, "GET", f"/api/accounts/{bot.account_id}")
        if read is None or not read.ok:
            return
        self._follow_transfers(bot, read.body)
        equity = bot.walk.step(self.rng)  # type: ignore[union-attr]
        answer = self._bot(bot, "POST", f"/api/accounts/{bot.account_id}/metrics", {"equity": equity})
        if answer is None or not answer.ok:
            return
        bot.books = (Decimal(answer.body["equity"]), Decimal(answer.body["day_start_equity"]))
        bot.peak = max(bot.peak, Decimal(answer.body["peak_equity"]))
        self._stopped(bot, any(mode != "active" for mode in answer.body["state"].values()))
        self.stats["reports"] += 1
        if answer.status == 202:
            self.stats["reports_held"] += 1
        if answer.body.get("emergency"):
            self.stats["emergencies"] += 1
            logger.error("simulator.emergency", account_id=bot.account_id, emergency=answer.body["emergency"])

    @staticmethod
    def _follow_transfers(bot: Bot, account: dict) -> None:
        """An operator's deposit or withdrawal moves equity and start-of-day equity by the same amount (a day roll
        or a confirmed hold moves one of them only): the walk moves with it, as the exchange balance a real bot
        reports would. Reporting the old level would take a deposit back out: a drawdown from the raised peak,
        and an emergency halt the desk tripped by itself."""
        if bot.books is None or bot.walk is None:
            return
        moved = Decimal(account["equity"]) - bot.books[0]
        if moved and Decimal(account["day_start_equity"]) - bot.books[1] == moved:
            bot.walk.anchor += moved
            if bot.walk.target is not None:
                bot.walk.target += moved
            bot.peak = max(bot.peak + moved, Decimal(account["peak_equity"]))
            logger.info("simulator.transfer_followed", account_id=bot.account_id, amount=str(moved))
        bot.books = (Decimal(account["equity"]), Decimal(account["day_start_equity"]))

    def _read(self, bot: Bot) -> None:
        """A plain read of its own account: a heartbeat."""
        answer = self._bot(bot, "GET", f"/api/accounts/{bot.account_id}")
        if answer is not None and answer.ok:
            self.stats["reads"] += 1

    # ------------------------------------------------------------------------------------------ checks
    def _in_force(self) -> DeskLimits:
        if self.limits is None:  # a bot's turn comes only after the limits were read
            raise RuntimeError("The desk has not read the limits yet.")
        return self.limits

    def _can_ask_approval(self, bot: Bot) -> bool:
        limits = self.limits
        pending = sum(1 for other in self.bots for position in other.held("pending_approval") if position.own)
        if limits is None or pending >= self.config.max_pending or bot.held("pending_approval"):
            return False
        return limits.approval_threshold * Decimal("1.05") <= bot.equity * limits.max_position_pct * Decimal("0.9")

    def _check(self, bot: Bot) -> None:
        """An ordinary order: 1-4 % of equity, below the approval threshold and the position size limit."""
        limits = self._in_force()
        notional = min(
            bot.equity * fraction(self.rng.uniform(0.01, 0.04)),
            limits.approval_threshold * Decimal("0.8"),
            bot.equity * limits.max_position_pct * Decimal("0.8"),
        )
        self._post_check(bot, notional, "check")

    def _approval_check(self, bot: Bot) -> None:
        """An order above the approval threshold, within every limit: an operator decides it."""
        limits = self._in_force()
        ceiling = bot.equity * limits.max_position_pct * Decimal("0.9")
        notional = min(ceiling, limits.approval_threshold * fraction(self.rng.uniform(1.05, 1.5)))
        self._post_check(bot, notional, "approval_check")

    def _reject_check(self, bot: Bot) -> None:
        """An order past max_position_pct of equity: a limit rejects it."""
        limits = self._in_force()
        self._post_check(bot, bot.equity * limits.max_position_pct * fraction(self.rng.uniform(1.3, 1.8)), "reject")

    def _post_check(self, bot: Bot, notional: Decimal, kind: str) -> None:
        symbol, side = self.rng.choice(self.symbols), self.rng.choice(("long", "short"))
        price = self._mark(symbol)
        quantity = quantity_for(notional, price)
        if quantity <= 0:
            self._read(bot)
            return
        body = {
            "account_id": bot.account_id,
            "symbol": symbol,
            "side": side,
            "quantity": quantity,
            "price": price,
            "client_order_id": self._new_id("o"),
        }
        answer = self._bot(bot, "POST", "/api/risk/check-position", body)
        if answer is None or not answer.ok:
            return
        self._checked(bot, answer.body, body, kind)

    def _checked(self, bot: Bot, result: dict, body: dict, kind: str) -> None:
        decision = result["decision"]
        self.stats[f"checks_{decision}"] += 1
        self.stats[f"{kind}s"] += 1
        if decision == "rejected":
            codes = [reason["code"] for reason in result["reasons"]]
            self.stats.update(f"rejected_{code}" for code in codes)
            logger.info("simulator.check_rejected", account_id=bot.account_id, kind=kind, codes=codes)
            if "trading_halted" in codes:
                self._stopped(bot, True)
            return
        bot.positions[result["position_id"]] = Tracked(
            result["position_id"],
            body["symbol"],
            body["side"],
            result["status"] or decision,
            body["quantity"],
            own=True,
            expires_at=_instant(result.get("expires_at")),
        )

    # ------------------------------------------------------------------------------------------ positions
    def _fill(self, bot: Bot) -> None:
        position = self.rng.choice([p for p in bot.held("approved", "open") if p.unfilled > 0])
        whole = self.rng.random() < 0.6
        quantity = position.unfilled if whole else share(position.unfilled, self.rng) or position.unfilled
        partial = quantity < position.unfilled
        price = slipped(self._mark(position.symbol), self.rng)
        body = {
            "exchange_order_id": self._new_id("f"),
            "quantity": quantity,
            "price": price,
            "fees": fees_for(quantity, price),
        }
        if self._position_call(bot, position, "fill", body):
            self.stats["partial_fills" if partial else "fills"] += 1

    def _close(self, bot: Bot) -> None:
        position = self.rng.choice([p for p in bot.held("open") if p.open_quantity > 0])
        partial = self.rng.random() < 0.4
        quantity = share(position.open_quantity, self.rng) if partial else position.open_quantity
        if quantity <= 0:
            quantity, partial = position.open_quantity, False
        price = slipped(self._mark(position.symbol), self.rng)
        body = {"client_close_id": self._new_id("c"), "exit_price": price, "fees": fees_for(quantity, price)}
        if partial:
            body["quantity"] = quantity
        if self._position_call(bot, position, "close", body):
            self.stats["partial_closes" if partial else "closes"] += 1

    def _cancel(self, bot: Bot) -> None:
        candidates = [p for p in bot.held("approved", "open") if p.unfilled > 0 and p.open_quantity == 0]
        if self._position_call(bot, self.rng.choice(candidates), "cancel", None):
            self.stats["cancels"] += 1

    def _poll(self, bot: Bot) -> None:
        """Has an operator decided its pending position?"""
        position = bot.held("pending_approval")[0]
        answer = self._bot(bot, "GET", f"/api/positions/{position.id}")
        self.stats["polls"] += 1
        self._track(bot, position, answer.body if answer is not None and answer.ok else None, answer)

    def _position_call(self, bot: Bot, position: Tracked, action: str, body: dict | None) -> bool:
        answer = self._bot(bot, "POST", f"/api/positions/{position.id}/{action}", body)
        if answer is None:
            return False
        payload = answer.body.get("position", answer.body) if answer.ok else None
        self._track(bot, position, payload, answer)
        return answer.ok

    def _track(self, bot: Bot, position: Tracked, payload: dict | None, answer: Answer | None) -> None:
        """Follow the position as the API describes it; forget it once it is done, or when the API refused the
        step (a 400, 404 or 409: it changed under the desk, say an operator's cancel)."""
        if payload is not None:
            position.update(payload)
        elif answer is not None and answer.status in FORGET_ON:
            position.status = "forgotten"
        if position.status in TERMINAL or position.status == "forgotten":
            bot.positions.pop(position.id, None)

    # ------------------------------------------------------------------------------------------ requests
    def _bot(self, bot: Bot, method: str, path: str, body: dict | None = None) -> Answer | None:
        return self._logged(self.client.call(method, path, bot.token, body), method, path)

    def _operator(self, method: str, path: str, body: dict | None = None, expected: int = 0) -> Answer | None:
        return self._logged(self.client.call(method, path, self.config.operator_token, body), method, path, expected)

    def _logged(self, answer: Answer | None, method: str, path: str, expected: int = 0) -> Answer | None:
        if answer is None:
            self.stats["no_answer"] += 1
        elif not answer.ok and answer.status != expected:
            self.stats[f"http_{answer.status}"] += 1
            logger.info("simulator.refused", method=method, path=path, status=answer.status, code=answer.error_code)
        return answer

    def _new_id(self, kind: str) -> str:
        self._ids += 1
        return f"sim-{self._tag}-{kind}{self._ids}"

    def _summary(self) -> dict[str, Any]:
        return dict(sorted(self.stats.items()))

    def _log_summary(self) -> None:
        if time.monotonic() >= self._summary_at:
            self._summary_at = time.monotonic() + self.config.summary_every
            logger.info("simulator.summary", iterations=self.iteration, **self._summary())


def _instant(text: str | None) -> datetime | None:
    """An API time (ISO 8601, UTC) as an aware datetime; None stays None."""
    return datetime.fromisoformat(text) if text else None
