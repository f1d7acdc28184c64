"""The accounts app's errors (the base: nija.errors).

Model and service validation in this app raises Django's `ValidationError` (what `full_clean` raises and admin
forms display); the API renders it as a 400 `validation_error` in the same one place as every `DomainError`."""

from nija.errors import DomainError


class AccountInactive(DomainError):
    """The account or its user was deactivated. Its bot may still report fills and closes of what it holds (they
    happened at the exchange), and nothing else: views that accept them set `allows_inactive_account = True`."""

    status_code = 403
    default_code = "account_inactive"
    default_detail = "This account is inactive: only fills and closes of what it already holds are accepted."
