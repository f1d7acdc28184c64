"""The risk app: the pre-trade gate and everything it keeps exact.

It owns the portfolio and its exposure counters (per symbol, per correlation group), the limits (`defaults`), the
kill switch (trading states), risk events, equity holds and transfers; the pure decision code (`engine`); the
services that check, reserve, fill, close, approve, report equity, activate accounts and halt (`services`, under
the row locks `locks` declares); the bot and operator API and the risk desk in admin. It imports trading and
accounts, never monitoring.
"""
