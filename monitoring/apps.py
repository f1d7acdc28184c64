from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "monitoring"

    def ready(self) -> None:
        """The alert delivery task registered in every process (Celery autodiscovers `monitoring.tasks` only), and
        the desk's business gauges joined to every /metrics scrape."""
        from monitoring.alerts import tasks  # noqa: F401
        from monitoring.prometheus import DeskCollector
        from nija.metrics import collector_register

        collector_register(DeskCollector())

    def periodic_tasks(self) -> tuple:
        """The monitoring app's periodic tasks (collected by `python manage.py sync_schedule`, nija.schedule)."""
        from django.conf import settings

        from monitoring.tasks import AGGREGATE, ANALYTICS, PRUNE_HISTORY
        from nija.schedule import PeriodicEntry

        return (
            PeriodicEntry("monitoring: aggregate desk metrics", AGGREGATE, settings.MONITORING_INTERVAL_SECONDS),
            PeriodicEntry("monitoring: desk analytics", ANALYTICS, settings.MONITORING_ANALYTICS_INTERVAL_SECONDS),
            PeriodicEntry("monitoring: prune history", PRUNE_HISTORY, settings.MONITORING_PRUNE_INTERVAL_SECONDS),
        )
