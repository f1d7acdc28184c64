"""Create the first operator login once, and say how to sign in.

The password is generated, printed once and kept in the git-ignored var/operator.txt so a later `make run`
can remind the developer; it is never logged.
"""

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.models import User

CREDENTIALS_FILE = settings.VAR_DIR / "operator.txt"


class Command(BaseCommand):
    help = "Create the operator superuser on first run and print the admin URL, user and password."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="operator")
        parser.add_argument("--url", default="http://127.0.0.1:8000/admin/")

    def handle(self, *args: object, username: str, url: str, **options: object) -> None:
        if User.objects.filter(username=username).exists():
            where = f"(password in {CREDENTIALS_FILE})" if CREDENTIALS_FILE.exists() else ""
            self.stdout.write(f"Admin: {url}  user: {username} {where}")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email=f"{username}@localhost", password=password)
        CREDENTIALS_FILE.parent.mkdir(parents=True, exist_ok=True)
        CREDENTIALS_FILE.write_text(f"user: {username}\npassword: {password}\n")
        CREDENTIALS_FILE.chmod(0o600)
        self.stdout.write(self.style.SUCCESS(f"Admin: {url}  user: {username}  password: {password}"))
