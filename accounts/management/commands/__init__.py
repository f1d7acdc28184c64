"""Django management commands of the accounts app (manage.py <command>)."""
