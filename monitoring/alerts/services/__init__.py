"""Writes of the alerts: rules and channels (audited), the evaluation run, and delivery attempts."""
