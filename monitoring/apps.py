from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "monitoring"

    def ready(self) -> None:
        # Celery autodiscovers `monitoring.tasks` only: register the alert delivery task in every process.
        from monitoring.alerts import tasks  # noqa: F401
