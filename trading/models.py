"""Models of the trading app (added by later issues)."""
