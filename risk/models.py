"""Models of the risk app (added by later issues)."""
