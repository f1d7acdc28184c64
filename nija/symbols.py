"""Trading symbols: the one canonical spelling, `BASE-QUOTE` in upper case (`BTC-USD`).

Every notional is in one quote currency (USD), so USD is the only quote accepted. Base and quote are 2 to 10
letters or digits (`1INCH-USD`). Pure functions, no Django, no app import: API layers, model validators and
services (trading, risk, accounts' allowed_symbols) call `canonical_symbol` on input and store or look up only its
result; the database re-checks the format with a CheckConstraint (`SYMBOL_SQL_REGEX`). `trading.symbols`
re-exports this module for its existing importers.
"""

import re

__all__ = [
    "QUOTE_CURRENCY",
    "SEPARATORS",
    "SYMBOL_MAX_LENGTH",
    "SYMBOL_SQL_REGEX",
    "canonical_symbol",
    "is_canonical_symbol",
]

QUOTE_CURRENCY = "USD"
SEPARATORS = "-/_"
_PART = re.compile(r"[A-Z0-9]{2,10}")
# The canonical form as a database regular expression (PostgreSQL `~`), used by model CheckConstraints.
SYMBOL_SQL_REGEX = r"^[A-Z0-9]{2,10}-USD$"
SYMBOL_MAX_LENGTH = 32


def canonical_symbol(text: str) -> str:
    """`text` in canonical form (`" btc/usd "` -> `"BTC-USD"`); ValueError when it cannot be one.

    Accepts surrounding whitespace, any letter case and one separator among `-`, `/`, `_`. The error message
    quotes the input (truncated) so an API can return it as a field error.
    """
    if not isinstance(text, str):
        raise ValueError("A symbol must be a string like 'BTC-USD'.")
    cleaned = text.strip()
    shown = cleaned[:SYMBOL_MAX_LENGTH]
    if not cleaned.isascii():
        raise ValueError(f"Symbol {shown!r}: only ASCII letters and digits are allowed.")
    cleaned = cleaned.upper()
    parts = re.split(f"[{re.escape(SEPARATORS)}]", cleaned)
    if len(parts) != 2:
        raise ValueError(f"Symbol {shown!r} is not BASE-QUOTE (like 'BTC-USD').")
    base, quote = parts
    if not _PART.fullmatch(base):
        raise ValueError(f"Symbol {shown!r}: the base must be 2 to 10 letters or digits.")
    if quote != QUOTE_CURRENCY:
        raise ValueError(f"Symbol {shown!r}: the quote currency must be {QUOTE_CURRENCY}.")
    if base == quote:
        raise ValueError(f"Symbol {shown!r}: base and quote must differ.")
    return f"{base}-{quote}"


def is_canonical_symbol(text: str) -> bool:
    """True when `text` is already in canonical form (what the database accepts)."""
    try:
        return canonical_symbol(text) == text
    except ValueError:
        return False
