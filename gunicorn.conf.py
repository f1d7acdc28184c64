"""gunicorn settings for the web process (read with `-c gunicorn.conf.py`; the command line sets the rest).

Only logging lives here: gunicorn's master never loads Django, so its own lines are made JSON by the logs app's
formatter (`logs.config.build_gunicorn_logging`), like every other line of every process.
"""

from logs.config import build_gunicorn_logging

logconfig_dict = build_gunicorn_logging()
