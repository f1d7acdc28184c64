"""Models of the monitoring app (added by later issues)."""
