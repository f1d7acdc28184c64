"""JSON parsing that never turns money into float.

DRF's stock parser reads JSON numbers as float, so `1234567890.12345678` silently loses digits. Here every
JSON number with a fraction or exponent becomes a `Decimal`, and the non-standard NaN / Infinity literals
are a parse error (400) before any view sees them.
"""

import json
from decimal import Decimal
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid number")


def loads_decimal(text: str) -> Any:
    """Parse JSON text with Decimal floats and no NaN/Infinity."""
    return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)


class DecimalJSONParser(JSONParser):
    """Parses `application/json` bodies with `loads_decimal`."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", "utf-8")
        try:
            return loads_decimal(stream.read().decode(encoding))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: deeply nested JSON
            raise ParseError(f"Malformed JSON: {exc}") from exc
