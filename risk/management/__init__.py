"""Management-time code of the risk app: its commands (`commands`) and what they share."""
