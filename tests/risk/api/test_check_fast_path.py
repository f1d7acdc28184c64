"""The check body's two parsers (`risk.api.fast_check_input` and the `CheckPositionInput` serializer) accept exactly
the same bodies and produce the same CheckInput, whatever is sent; and every amount field a bot can send refuses a
64 KiB value at the cost of a short one."""

import time
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from risk.api import (
    CheckPositionInput,
    CloseInputSerializer,
    EquityReportInput,
    FillInputSerializer,
    LegacyCheckInput,
    fast_check_input,
    validated,
)
from risk.services.check import CheckInput

amounts = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("99999"), places=8).map(
    lambda d: format(d, "f")
)
safe_ids = st.from_regex(r"[A-Za-z0-9._:\-]{1,64}", fullmatch=True)
bodies = st.fixed_dictionaries(
    {
        "account_id": st.integers(min_value=1, max_value=2**63 - 1),
        "symbol": st.sampled_from(["BTC-USD", "ETH-USD", "SOL-USD", "1INCH-USD"]),
        "side": st.sampled_from(["long", "short"]),
        "quantity": amounts,
        "price": amounts,
    },
    optional={
        "dry_run": st.booleans(),
        "reduce_only": st.booleans(),
        "client_order_id": safe_ids,
        "position_id": st.integers(min_value=1, max_value=2**63 - 1),
    },
)
# Values that are valid for some field and not for others, near misses of each kind, and the classic mismatches
# of two parsers: surrounding whitespace and newlines (one parser stripping what the other keeps), other number
# spellings, string booleans and ids, huge and tiny numbers.
SPELLINGS = [
    "1e3", "1E-8", "+1", "-0", "1.", ".5", "0.000000001", "1_000", " 1", "1 ", "1\n", "NaN", "-Infinity", "0x10",
    "btc-usd", " BTC-USD", "BTC/USD", "BTC-USD\n", "LONG", "long ", "ord-1\n", "ord-1 ", " ord-1", "ord 1", "",
    "true", "1", "12", "\u0661", "9" * 11, "1" * 70, "0" * 60 + "1",
]  # fmt: skip
any_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=2**64),
    st.text(max_size=12),
    st.sampled_from(SPELLINGS),
    safe_ids.map(lambda text: text + "\n"),
    amounts,
    st.decimals(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(), max_size=1),
)
FIELDS = [*CheckPositionInput._declared_fields, "extra"]


def _serializer(data: object) -> CheckInput | None:
    try:
        return CheckInput(**validated(CheckPositionInput, data))
    except ValidationError:
        return None


@settings(max_examples=300, deadline=None)
@given(bodies)
def test_the_fast_path_parses_valid_bodies_exactly_as_the_serializer(body):
    expected = _serializer(body)

    assert fast_check_input(body) == expected
    assert (expected is None) == (body.get("reduce_only", False) and "position_id" not in body)


@settings(max_examples=1500, deadline=None)
@given(bodies, st.dictionaries(st.sampled_from(FIELDS), any_value, max_size=3), st.sets(st.sampled_from(FIELDS)))
def test_both_parsers_accept_the_same_bodies_and_produce_the_same_check(body, changes, removed):
    body = {name: value for name, value in (body | changes).items() if name not in removed}

    assert fast_check_input(body) == _serializer(body)


@pytest.mark.parametrize(
    "change",
    [
        {"client_order_id": "ord-1\n"},
        {"client_order_id": " ord-1"},
        {"client_order_id": "ord-1 "},
        {"client_order_id": 12345},
        {"symbol": 123},
        {"account_id": "1"},
        {"account_id": 1.0},
        {"dry_run": "true"},
        {"dry_run": 1},
        {"quantity": "0.1 "},
        {"quantity": "0.1\n"},
    ],
)
def test_an_id_or_amount_is_taken_exactly_as_sent_by_both_parsers(change):
    """The same retry must never become two ids: nothing is trimmed or coerced, so both parsers refuse these."""
    body = {"account_id": 1, "symbol": "BTC-USD", "side": "long", "quantity": "0.1", "price": "50000"} | change

    assert fast_check_input(body) is None
    assert _serializer(body) is None


@pytest.mark.parametrize(
    "change",
    [{"symbol": "btc/usd"}, {"quantity": "1e-1"}, {"quantity": Decimal("0.10")}, {"price": 50000}, {"price": "+5E4"}],
)
def test_other_valid_spellings_take_the_fast_path_too(change):
    body = {"account_id": 1, "symbol": "BTC-USD", "side": "long", "quantity": "0.1", "price": "50000"} | change

    parsed = fast_check_input(body)

    assert parsed == _serializer(body)
    assert (parsed.symbol, parsed.quantity, parsed.price) == ("BTC-USD", Decimal("0.1"), Decimal("50000"))


# ---------------------------------------------------------------------------------------------- amounts: cost
BOT_AMOUNT_FIELDS = [
    (CheckPositionInput, {"account_id": 1, "symbol": "BTC-USD", "side": "long", "quantity": "1", "price": "1"}),
    (LegacyCheckInput, {"account_id": 1, "position_size": "1"}),
    (FillInputSerializer, {"exchange_order_id": "ex-1", "quantity": "1", "price": "1", "fees": "0"}),
    (CloseInputSerializer, {"client_close_id": "c-1", "exit_price": "1", "fees": "0", "quantity": "1"}),
    (EquityReportInput, {"equity": "1", "cash_balance": "1"}),
]
AMOUNT_CASES = [
    pytest.param(serializer, body, name, id=f"{serializer.__name__}-{name}")
    for serializer, body in BOT_AMOUNT_FIELDS
    for name, field in serializer().fields.items()
    if isinstance(field, serializers.DecimalField)
]
LONG = 64 * 1024


def cost_of_refusing(serializer: type[serializers.Serializer], body: dict, name: str, value: str) -> float:
    """CPU seconds to refuse `body` with `value` in field `name`: the best of several runs (noise only adds)."""
    data = body | {name: value}
    best = float("inf")
    for _ in range(7):
        started = time.thread_time()
        for _ in range(5):
            with pytest.raises(ValidationError):
                validated(serializer, data)
        best = min(best, time.thread_time() - started)
    return best


@pytest.mark.parametrize(("serializer", "body", "name"), AMOUNT_CASES)
def test_a_64_kib_amount_is_refused_at_the_cost_of_a_short_one(serializer, body, name):
    """The length is bounded before any pattern runs: 64 KiB of digits (followed by a character the pattern refuses
    only at the end, the worst case of a backtracking pattern) costs what a short refused amount does, where a
    quadratic pattern costs minutes."""
    short = cost_of_refusing(serializer, body, name, "1x")

    for value in ("1" * LONG, "1" * (LONG - 1) + "x", "1" * (LONG // 2) + "e" + "1" * (LONG // 2 - 2) + "x"):
        assert cost_of_refusing(serializer, body, name, value) < 5 * short + 0.002
