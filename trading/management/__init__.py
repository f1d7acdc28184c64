"""Management-time code of the trading app: the bulk demo seed of trading history (`seed`, run by seed_demo)."""
