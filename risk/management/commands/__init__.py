"""Django management commands of the risk app (manage.py <command>)."""
