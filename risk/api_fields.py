"""One definition of every field a client sends to the risk API: a plain parse function per kind of value.

Each DRF field class below hands its value to one of these functions, and the check endpoint's fast path
(`risk.api.fast_check_input`) calls the very same functions without DRF, so the two can never disagree on what a
field accepts or what it becomes (an id with a trailing newline is refused by both, never stripped by one).
A function returns the parsed value or raises DRF's `ValidationError` with DRF's own wording.

Strict by design: amounts are JSON numbers or strings in plain ASCII decimal notation, ids are JSON integers,
flags are JSON booleans, identifiers are taken exactly as sent (no trimming). Every string is bounded in
length before any pattern looks at it, and every pattern is linear, so a 64 KiB value costs what a short one does.
"""

import re
from collections.abc import Callable
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from trading.symbols import SYMBOL_MAX_LENGTH, canonical_symbol

MAX_AMOUNT = Decimal("9999999999.99999999")  # NUMERIC(18, 8)
MIN_POSITIVE = EIGHT_PLACES = Decimal("0.00000001")
MAX_ID = 2**63 - 1
SAFE_ID = r"[A-Za-z0-9._:\-]{1,64}"
# The longest amount text looked at: `-9999999999.99999999` is 20 characters, and every valid amount fits 64 but
# one written with dozens of leading zeros.
MAX_AMOUNT_TEXT = 64
# Plain ASCII decimal notation. Unambiguous (each character can only be matched one way), hence linear: the
# earlier `[0-9]+\.?[0-9]*` could split a run of digits between its two repeats in every way before giving up.
AMOUNT_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")
_SAFE_ID = re.compile(SAFE_ID)

NUMBER = "A valid number is required."
INTEGER = "A valid integer is required."
BOOLEAN = "Must be a valid boolean."
NOT_STRING = "Not a valid string."
NOT_BLANK = "This field may not be blank."
PATTERN = "This value does not match the required pattern."

# DRF's own precision rules (digits in total, decimal places, whole digits), with its error messages.
_PRECISION = serializers.DecimalField(max_digits=18, decimal_places=8)
# Putting a value that passed them on the 8-decimal grid never rounds: a fixed context is enough (DRF's quantize
# copies the thread's context on every call, half the cost of parsing an amount).
_GRID = Context(prec=18, traps=[InvalidOperation])


def invalid(message: str) -> ValidationError:
    return ValidationError(message, code="invalid")


def parse_amount(value: Any, *, minimum: Decimal | None) -> Decimal:
    """An amount on the 8-decimal grid of NUMERIC(18,8), at least `minimum` (None: any sign): a JSON number
    (already a Decimal or an int) or a string in plain decimal notation; NaN, Infinity, more than 8 decimals,
    more than 10 whole digits are refused."""
    if type(value) is str:
        if len(value) > MAX_AMOUNT_TEXT or AMOUNT_TEXT.fullmatch(value) is None:
            raise invalid(NUMBER)
        amount = Decimal(value)
    elif type(value) is int:
        amount = Decimal(value)
    elif type(value) is Decimal and value.is_finite():
        amount = value
    else:
        raise invalid(NUMBER)
    amount = _PRECISION.validate_precision(amount).quantize(EIGHT_PLACES, context=_GRID)
    if minimum is not None and amount < minimum:
        raise ValidationError(f"Ensure this value is greater than or equal to {minimum}.", code="min_value")
    if amount > MAX_AMOUNT:
        raise ValidationError(f"Ensure this value is less than or equal to {MAX_AMOUNT}.", code="max_value")
    return amount


def parse_id(value: Any) -> int:
    """A database id: a JSON integer from 1 to 2**63 - 1 (not a boolean, not a string)."""
    if type(value) is not int:
        raise invalid(INTEGER)
    if value < 1:
        raise ValidationError("Ensure this value is greater than or equal to 1.", code="min_value")
    if value > MAX_ID:
        raise ValidationError(f"Ensure this value is less than or equal to {MAX_ID}.", code="max_value")
    return value


def parse_flag(value: Any) -> bool:
    """A JSON boolean (not "true", not 1)."""
    if type(value) is not bool:
        raise invalid(BOOLEAN)
    return value


def parse_safe_id(value: Any) -> str:
    """A client-chosen identifier (order, close, exchange order id) exactly as sent: 1 to 64 of
    `A-Z a-z 0-9 . _ : -`, nothing trimmed."""
    if value == "":
        raise ValidationError(NOT_BLANK, code="blank")
    if type(value) is not str or len(value) > 64 or _SAFE_ID.fullmatch(value) is None:
        raise invalid(PATTERN)
    return value


def parse_text(value: Any) -> str:
    """Free text (a reason): a JSON string, surrounding whitespace trimmed; a number or a list is refused, never
    turned into text (DRF's CharField would take 5 as "5")."""
    if type(value) is not str:
        raise invalid(NOT_STRING)
    return value.strip()


def parse_symbol(value: Any) -> str:
    """A symbol in its canonical spelling (`" btc/usd "` -> `"BTC-USD"`, see nija.symbols)."""
    if type(value) is not str:
        raise invalid(NOT_STRING)
    if value.strip() == "":
        raise ValidationError(NOT_BLANK, code="blank")
    if len(value) > SYMBOL_MAX_LENGTH:
        raise ValidationError(f"Ensure this field has no more than {SYMBOL_MAX_LENGTH} characters.", code="max_length")
    try:
        return canonical_symbol(value)
    except ValueError as exc:
        raise invalid(str(exc)) from None


def parse_choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    """A parser accepting exactly one of `choices` (strings, case-sensitive)."""

    def parse(value: Any) -> str:
        if type(value) is not str or value not in choices:
            raise ValidationError(f'"{value}" is not a valid choice.', code="invalid_choice")
        return value

    return parse


# ---------------------------------------------------------------------------------------------- DRF fields
class ParsedBy:
    """A DRF field whose value is parsed by `parse` (one of the functions above): the serializer, the OpenAPI
    schema (from the DRF base class) and the fast path all go through that one function."""

    def __init__(self, parse: Callable[[Any], Any], **kwargs: Any) -> None:
        self.parse = parse
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        return self.parse(data)


class MoneyField(ParsedBy, serializers.DecimalField):
    pass


class AmountField(serializers.DecimalField):
    """DRF's DecimalField with other digit limits (a threshold, say), refusing strings that are not plain decimal
    notation by the same bounded, linear test as `parse_amount`."""

    def to_internal_value(self, data: Any) -> Decimal:
        if type(data) is str and (len(data) > MAX_AMOUNT_TEXT or AMOUNT_TEXT.fullmatch(data) is None):
            self.fail("invalid")
        return super().to_internal_value(data)


class IdField(ParsedBy, serializers.IntegerField):
    pass


class FlagField(ParsedBy, serializers.BooleanField):
    pass


class TextField(ParsedBy, serializers.CharField):
    pass


class ChoiceOf(ParsedBy, serializers.ChoiceField):
    pass


def money(*, required: bool = True, positive: bool = True, allow_zero: bool = False, signed: bool = False):
    """An amount field: positive (the default), zero or more (`allow_zero`), or any sign (`signed`, fees)."""
    minimum = None if signed else (Decimal(0) if allow_zero or not positive else MIN_POSITIVE)

    def parse(value: Any) -> Decimal:
        return parse_amount(value, minimum=minimum)

    return MoneyField(
        parse,
        max_digits=18,
        decimal_places=8,
        min_value=minimum,
        max_value=MAX_AMOUNT,
        required=required,
        allow_null=False,
    )


def id_field(*, required: bool = True) -> IdField:
    return IdField(parse_id, required=required, min_value=1, max_value=MAX_ID)


def flag_field() -> FlagField:
    return FlagField(parse_flag, required=False, default=False)


def safe_id_field(*, required: bool = True) -> TextField:
    return TextField(parse_safe_id, required=required, max_length=64, trim_whitespace=False)


def text_field(*, max_length: int, required: bool = True, allow_blank: bool = False, **kwargs: Any) -> TextField:
    """Free text: blank and length are DRF's own rules (CharField), the type `parse_text`'s."""
    return TextField(parse_text, max_length=max_length, required=required, allow_blank=allow_blank, **kwargs)


def symbol_field() -> TextField:
    return TextField(parse_symbol, max_length=SYMBOL_MAX_LENGTH, trim_whitespace=False)


def choice_field(choices: tuple[str, ...]) -> ChoiceOf:
    return ChoiceOf(parse_choice(choices), choices=list(choices))
