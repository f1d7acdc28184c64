from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "monitoring"

    def ready(self) -> None:
        """The alert delivery task registered in every process (Celery autodiscovers `monitoring.tasks` only), the
        desk's business gauges joined to every /metrics scrape, and the event stream's credentials check."""
        from monitoring.alerts import tasks  # noqa: F401
        from monitoring.prometheus import DeskCollector
        from monitoring.stream_credentials import credentials_fallen
        from nija.metrics import collector_register
        from nija.stream_leases import credentials_check_register

        collector_register(DeskCollector())
        credentials_check_register(credentials_fallen)

    def periodic_tasks(self) -> tuple:
        """The monitoring app's periodic tasks (collected by `python manage.py sync_schedule`, nija.schedule)."""
        from django.conf import settings

        from monitoring.tasks import AGGREGATE, ANALYTICS, HEARTBEAT_WATCHDOG, PRUNE_HISTORY
        from nija.schedule import PeriodicEntry

        return (
            PeriodicEntry("monitoring: aggregate desk metrics", AGGREGATE, settings.MONITORING_INTERVAL_SECONDS),
            PeriodicEntry("monitoring: desk analytics", ANALYTICS, settings.MONITORING_ANALYTICS_INTERVAL_SECONDS),
            PeriodicEntry("monitoring: prune history", PRUNE_HISTORY, settings.MONITORING_PRUNE_INTERVAL_SECONDS),
            PeriodicEntry(
                "monitoring: heartbeat watchdog", HEARTBEAT_WATCHDOG, settings.MONITORING_HEARTBEAT_INTERVAL_SECONDS
            ),
        )
