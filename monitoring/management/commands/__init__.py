"""Django management commands of the monitoring app (manage.py <command>)."""
