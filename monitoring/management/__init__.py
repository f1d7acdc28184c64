"""Management-time code of the monitoring app: its commands (`commands`) and what they share."""
