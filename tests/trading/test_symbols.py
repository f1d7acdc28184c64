"""canonical_symbol: the one spelling of a trading symbol (pure, no database)."""

import pytest

from trading.symbols import canonical_symbol, is_canonical_symbol


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BTC-USD", "BTC-USD"),
        ("btc-usd", "BTC-USD"),
        ("  eth/usd\n", "ETH-USD"),
        ("sol_USD", "SOL-USD"),
        ("1inch-usd", "1INCH-USD"),
        ("ABCDEFGHIJ-USD", "ABCDEFGHIJ-USD"),
    ],
)
def test_canonical_symbol_normalizes(text, expected):
    assert canonical_symbol(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "BTC",
        "BTCUSD",
        "BTC-USDT",
        "BTC-EUR",
        "B-USD",
        "ABCDEFGHIJK-USD",
        "BTC--USD",
        "BTC-USD-X",
        "BT C-USD",
        "BTÇ-USD",
        "ßTC-USD",
        "USD-USD",
        "-USD",
        "BTC-",
        "BTC.USD",
    ],
)
def test_canonical_symbol_rejects(text):
    with pytest.raises(ValueError, match=r"^Symbol "):
        canonical_symbol(text)


def test_canonical_symbol_rejects_non_strings():
    with pytest.raises(ValueError, match="string"):
        canonical_symbol(None)  # type: ignore[arg-type]


def test_error_message_truncates_long_input():
    with pytest.raises(ValueError) as raised:
        canonical_symbol("X" * 5000)
    assert len(str(raised.value)) < 200


def test_is_canonical_symbol():
    assert is_canonical_symbol("BTC-USD")
    assert not is_canonical_symbol("btc-usd")
    assert not is_canonical_symbol("BTC-EUR")
