"""The accounts app: who may trade and with what.

It owns users (with their subscription tier), their trading permissions (per-user limits), broker credentials
(encrypted at rest), trading instances (the risk accounts: their operator fields; their equity, counters and
activation are moved by the risk app), API tokens (hashed; their resolution cached in Redis), the bearer
authentication, the operator roles (`roles`) and the append-only audit record every operator write leaves.
It imports no other app: trading, risk and monitoring build on it.
"""
