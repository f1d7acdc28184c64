from django.apps import AppConfig


class RiskConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "risk"

    def periodic_tasks(self) -> tuple:
        """The risk app's periodic tasks (collected by `python manage.py sync_schedule`, nija.schedule)."""
        from django.conf import settings

        from nija.schedule import PeriodicEntry
        from risk.tasks import EXPIRE_RESERVATIONS, SWEEP_ACCOUNTS

        return (
            PeriodicEntry(
                name="risk: expire reservations",
                task=EXPIRE_RESERVATIONS,
                every_seconds=settings.RISK_EXPIRY_INTERVAL_SECONDS,
            ),
            PeriodicEntry(
                name="risk: sweep accounts (stale equity, deactivated)",
                task=SWEEP_ACCOUNTS,
                every_seconds=settings.RISK_ACCOUNT_SWEEP_INTERVAL_SECONDS,
            ),
        )
