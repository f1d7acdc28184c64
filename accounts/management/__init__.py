"""Management-time code of the accounts app: its commands (`commands`) and what they share."""
