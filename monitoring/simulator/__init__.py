"""The living demo desk (`python manage.py simulate_desk`): a price feed and bots on the public HTTP API."""
