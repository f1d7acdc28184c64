"""The pure risk engine's cost per decision, against a bare Decimal multiply-and-compare measured in the same run.

Run: `make bench`, or `.venv/bin/pytest tests/bench/bench_engine.py -s -o addopts=""`.
Target: under 10 µs median per decision with every rule on. Each decision is timed on its own with
`time.perf_counter_ns` (so the p99 shows the slow ones), over a mix of inputs that run every rule: a symbol in a
correlation group with allowed symbols set, an approved request, one rejected by several rules at once (the reasons
and messages are built then), and a pending approval. The timer's own cost is measured and subtracted. No assertion
on time: the figures are printed for the closing note.
"""

import statistics
import time
from collections.abc import Callable
from decimal import Decimal

from risk.engine import (
    AccountState,
    CheckRequest,
    Limits,
    Outcome,
    PortfolioState,
    Side,
    UserLimits,
    evaluate,
)

D = Decimal
ROUNDS = 20_000
WARMUP = 2_000

LIMITS = Limits()
USER = UserLimits(
    can_trade=True,
    max_position_size=D("50000"),
    max_daily_loss=D("10000"),
    max_open_positions=20,
    allowed_symbols=frozenset({"BTC-USD", "ETH-USD", "SOL-USD"}),
)
ACCOUNT = AccountState(
    account_id=1,
    equity=D("250000.12345678"),
    exposure=D("41000.5"),
    position_count=4,
    peak_equity=D("260000"),
    day_start_equity=D("251000"),
)
PORTFOLIO = PortfolioState(
    equity=D("5000000"),
    exposure=D("1200000.25"),
    position_count=37,
    day_start_equity=D("5010000"),
    symbol_exposure=D("400000"),
    group_exposure=D("900000"),
    group_limit_pct=D("0.40"),
    group_name="majors",
)
APPROVED = CheckRequest("BTC-USD", Side.LONG, D("0.25"), D("61234.56789"), mark=D("61240.1"))
PENDING = CheckRequest("ETH-USD", Side.SHORT, D("10"), D("3050.5"), mark=None)
REJECTED = CheckRequest("SOL-USD", Side.LONG, D("4000"), D("150.25"), mark=D("151"))  # size and exposure rules


def _timer_overhead_ns() -> int:
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter_ns()
        samples.append(time.perf_counter_ns() - started)
    return int(statistics.median(samples))


def _per_call_ns(call: Callable[[], object], overhead: int) -> list[int]:
    for _ in range(WARMUP):
        call()
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - started - overhead)
    return sorted(samples)


def _line(name: str, samples: list[int]) -> str:
    median = statistics.median(samples) / 1000
    p99 = samples[int(len(samples) * 0.99)] / 1000
    return f"{name:<46} median {median:7.2f} µs   p99 {p99:7.2f} µs", median


def test_engine_microseconds_per_decision():
    outcomes = {r: evaluate(r, ACCOUNT, PORTFOLIO, USER, LIMITS).decision for r in (APPROVED, PENDING, REJECTED)}
    assert list(outcomes.values()) == [Outcome.APPROVED, Outcome.PENDING_APPROVAL, Outcome.REJECTED]
    rejected = evaluate(REJECTED, ACCOUNT, PORTFOLIO, USER, LIMITS)

    overhead = _timer_overhead_ns()
    price, cap = D("61234.56789"), D("250000.12345678")
    pct = D("0.20")
    baseline = _per_call_ns(lambda: D("0.25") * price > pct * cap, overhead)
    runs = {
        "evaluate, approved (every rule run)": _per_call_ns(
            lambda: evaluate(APPROVED, ACCOUNT, PORTFOLIO, USER, LIMITS), overhead
        ),
        "evaluate, pending_approval": _per_call_ns(
            lambda: evaluate(PENDING, ACCOUNT, PORTFOLIO, USER, LIMITS), overhead
        ),
        f"evaluate, rejected ({len(rejected.reasons)} reasons built)": _per_call_ns(
            lambda: evaluate(REJECTED, ACCOUNT, PORTFOLIO, USER, LIMITS), overhead
        ),
    }
    mixed = sorted(sample for samples in runs.values() for sample in samples)

    print(f"\n[bench_engine] {ROUNDS} single decisions per case, timer overhead {overhead} ns subtracted")
    base_line, base_median = _line("baseline: Decimal multiply x2 + compare", baseline)
    print(f"[bench_engine] {base_line}")
    for name, samples in runs.items():
        text, median = _line(name, samples)
        print(f"[bench_engine] {text}   ({median / base_median:.0f}x baseline)")
    text, median = _line("evaluate, all three cases together", mixed)
    print(f"[bench_engine] {text}   target: median < 10 µs -> {'met' if median < 10 else 'NOT met'}")
