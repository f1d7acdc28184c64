"""Models of the monitoring app. The alert models live in monitoring.alerts.models and are registered here."""

from monitoring.alerts.models import (  # noqa: F401 - registered with the monitoring app
    AlertDelivery,
    AlertDeliveryAttempt,
    AlertEvent,
    AlertRule,
    AlertState,
    NotificationChannel,
)
