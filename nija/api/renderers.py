"""JSON rendering that writes every Decimal as a string (money travels as strings both ways)."""

from decimal import Decimal
from typing import Any

from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder


class DecimalStringEncoder(JSONEncoder):
    """DRF's encoder turns a bare Decimal into float; keep it exact as a string instead."""

    def default(self, obj: Any) -> Any:
        if isinstance(obj, Decimal):
            return str(obj)
        return super().default(obj)


class DecimalJSONRenderer(JSONRenderer):
    encoder_class = DecimalStringEncoder
