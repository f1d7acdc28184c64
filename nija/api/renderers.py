"""JSON rendering that writes every Decimal as a string (money travels as strings both ways)."""

from decimal import Decimal
from typing import Any

from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder


class DecimalStringEncoder(JSONEncoder):
    """DRF's encoder turns a bare Decimal into float; keep it exact as a plain string instead (fixed-point:
    `str()` would write a zero with 8 decimals as "0E-8")."""

    def default(self, obj: Any) -> Any:
        if isinstance(obj, Decimal):
            return format(obj, "f")
        return super().default(obj)


class DecimalJSONRenderer(JSONRenderer):
    encoder_class = DecimalStringEncoder
