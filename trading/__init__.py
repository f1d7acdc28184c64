"""The trading app: the record of what bots trade, and the market marks.

It owns positions (every non-dry-run check with its decision), their fills, the trades that closed them and each
instance's daily statistics (declarative models: the risk services write them), the market price cache in Redis
with its GET/PUT /api/market/{symbol} endpoint, check-request fingerprints (idempotent retries) and its admin.
It imports only accounts.
"""
