"""`python manage.py seed_demo --accounts N --positions M --tokens-out FILE [--seed S]`: demo data.

The data and its rules live in trading/management/seed.py.

Every run adds a fresh batch (names carry a random tag), so it can run on a populated database; the raw tokens
of that batch are written to FILE only.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trading.management.seed import seed_demo


class Command(BaseCommand):
    help = "Create demo users, instances, positions, trades and daily statistics; write their API tokens to a file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--accounts", type=int, default=20, help="trading instances (one user each)")
        parser.add_argument("--positions", type=int, default=400, help="positions, spread evenly over the accounts")
        parser.add_argument("--tokens-out", type=Path, required=True, help="JSON file for the raw tokens (0600)")
        parser.add_argument("--seed", type=int, default=None, help="random seed for reproducible data")

    def handle(self, *args: object, accounts: int, positions: int, tokens_out: Path, seed: int | None, **options):
        if accounts < 1 or positions < 0:
            raise CommandError("--accounts must be at least 1 and --positions at least 0.")
        result = seed_demo(accounts=accounts, positions=positions, tokens_out=tokens_out, seed=seed)
        counts = ", ".join(f"{count} {name}" for name, count in result.counts.items())
        self.stdout.write(self.style.SUCCESS(f"seed_demo batch {result.tag}: {counts} in {result.seconds:.1f} s"))
        self.stdout.write(f"Operator: {result.operator_username} (staff). Tokens written to {tokens_out}.")
