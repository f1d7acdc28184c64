"""`python manage.py sync_schedule`: create the periodic tasks every app declares (nija.schedule) that are missing
in django-celery-beat's tables, keeping every existing one (and any edit made to it in admin) as it is."""

from django.core.management.base import BaseCommand

from nija.schedule import periodic_tasks_ensure


class Command(BaseCommand):
    help = "Create missing periodic tasks (django-celery-beat); never overwrite existing ones or their admin edits."

    def handle(self, *args: object, **options: object) -> None:
        for entry, created in periodic_tasks_ensure():
            if created:
                self.stdout.write(f"created {entry.name!r}: {entry.task} every {entry.every_seconds} s")
            else:
                self.stdout.write(f"kept {entry.name!r} as it is")
