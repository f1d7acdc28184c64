"""Admin of the monitoring app: the alert pages are registered by monitoring.alerts.admin."""

from monitoring.alerts import admin as alerts_admin  # noqa: F401 - registers the alert models
