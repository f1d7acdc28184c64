"""JSON rendering that writes every Decimal as a string (money travels as strings both ways), with orjson.

orjson renders; whatever it does not know natively (Decimal, and datetimes, passed through on purpose so they keep
DRF's format) goes through `_default`: a Decimal as a fixed-point string, anything else through DRF's own encoder
(lazy strings, dates, times, durations, QuerySets, generators ...). The bytes are those DRF's renderer writes for
the same data (compact, UTF-8, U+2028 and U+2029 escaped), at about a third of the time. orjson never parses here:
request bodies stay with `nija.api.parsers` (Decimal floats).
"""

from decimal import Decimal
from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME
_LINE_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


class DecimalStringEncoder(JSONEncoder):
    """DRF's encoder turns a bare Decimal into float; keep it exact as a plain string instead (fixed-point:
    `str()` would write a zero with 8 decimals as "0E-8")."""

    def default(self, obj: Any) -> Any:
        if isinstance(obj, Decimal):
            return format(obj, "f")
        return super().default(obj)


_encoder = DecimalStringEncoder()


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return format(obj, "f")
    return _encoder.default(obj)


def dumps(data: Any) -> bytes:
    """`data` as compact UTF-8 JSON, Decimals as strings, U+2028/U+2029 escaped (as DRF writes them)."""
    rendered = orjson.dumps(data, default=_default, option=_OPTIONS)
    if b"\xe2\x80" in rendered:
        for raw, escaped in _LINE_SEPARATORS:
            rendered = rendered.replace(raw, escaped)
    return rendered


class DecimalJSONRenderer(JSONRenderer):
    encoder_class = DecimalStringEncoder

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: dict | None = None) -> bytes:
        """orjson for the compact form every client gets; DRF's own path for an indented answer (a client that
        asks for `indent`), and for what orjson refuses (an integer beyond 64 bits, a NaN DRF refuses too)."""
        if data is None:
            return b""
        if self.get_indent(accepted_media_type or "", renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            return dumps(data)
        except TypeError:
            return super().render(data, accepted_media_type, renderer_context)
