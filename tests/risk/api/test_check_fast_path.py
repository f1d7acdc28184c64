"""The check body's fast path (`risk.api.fast_check_input`) must agree with the serializer wherever it answers,
and hand everything else to the serializer (which then accepts or refuses it as before)."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from risk.api import CheckPositionInput, fast_check_input, validated
from risk.services.check import CheckInput

amounts = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("99999"), places=8).map(
    lambda d: format(d, "f")
)
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
        "client_order_id": st.from_regex(r"[A-Za-z0-9._:\-]{1,64}", fullmatch=True),
        "position_id": st.integers(min_value=1, max_value=2**63 - 1),
    },
)


def _serializer(data: dict) -> CheckInput | None:
    try:
        return CheckInput(**validated(CheckPositionInput, data))
    except ValidationError:
        return None


@settings(max_examples=300, deadline=None)
@given(bodies)
def test_the_fast_path_parses_canonical_bodies_exactly_as_the_serializer(body):
    fast = fast_check_input(body)

    assert fast is not None
    assert fast == _serializer(body)


@settings(max_examples=300, deadline=None)
@given(
    bodies,
    st.sampled_from(["account_id", "symbol", "side", "quantity", "price", "dry_run", "client_order_id", "extra"]),
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-5, max_value=5),
        st.text(max_size=12),
        st.sampled_from(["1e3", "1_000", " 1", "0", "0.000000001", "NaN", "btc/usd", "LONG", "", "1.", ".5"]),
        st.decimals(allow_nan=True, allow_infinity=True),
    ),
)
def test_whatever_the_fast_path_accepts_the_serializer_accepts_identically(body, field, value):
    body = body | {field: value}

    fast = fast_check_input(body)

    if fast is not None:
        assert fast == _serializer(body)


@pytest.mark.parametrize(
    "change",
    [
        {"quantity": "0"},
        {"quantity": "1e3"},
        {"quantity": 1},
        {"price": "0.123456789"},
        {"symbol": "btc-usd"},
        {"symbol": "BTC/USD"},
        {"side": "LONG"},
        {"account_id": True},
        {"account_id": "1"},
        {"dry_run": "true"},
        {"reduce_only": True},
        {"client_order_id": " padded"},
        {"position_id": None},
        {"exposure": "1"},
    ],
)
def test_anything_not_canonical_goes_to_the_serializer(change):
    body = {"account_id": 1, "symbol": "BTC-USD", "side": "long", "quantity": "0.1", "price": "50000"}

    assert fast_check_input(body | change) is None
