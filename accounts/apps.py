from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self) -> None:
        """Stop start-up when CREDENTIALS_KEYS is missing or malformed (the message never holds a key)."""
        from accounts import schema  # noqa: F401 - registers the bearer token scheme with drf-spectacular
        from accounts.crypto import validate_keys

        validate_keys()
