"""The fingerprint of a check request: what tells a retry (same `client_order_id`, same body) from a different body
under the same id. One function for every writer of `Position.request_fingerprint` (the risk check, seed_demo), so a
seeded position's retry is recognized exactly as a checked one's.

Pure (no Django): SHA-256 of the request's meaning in canonical JSON (`json.dumps(body, sort_keys=True)`, numbers
normalized to plain decimal strings), written out by hand because seed_demo computes 200,000 of them and
`json.dumps` of a dict costs four times as much (tests pin the two texts equal).
"""

import hashlib
from decimal import Decimal
from json.encoder import encode_basestring_ascii


def check_fingerprint(
    *, symbol: str, side: str, quantity: Decimal, price: Decimal, reduce_only: bool, position_id: int | None
) -> str:
    """SHA-256 hex digest of the check body `{symbol, side, quantity, price, reduce_only, position_id}`."""
    text = (
        f'{{"position_id": {"null" if position_id is None else int(position_id)}, '
        f'"price": "{price.normalize():f}", "quantity": "{quantity.normalize():f}", '
        f'"reduce_only": {"true" if reduce_only else "false"}, '
        f'"side": {encode_basestring_ascii(str(side))}, "symbol": {encode_basestring_ascii(symbol)}}}'
    )
    return hashlib.sha256(text.encode()).hexdigest()
