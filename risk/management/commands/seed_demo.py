"""`python manage.py seed_demo --accounts N --positions M --tokens-out FILE [--seed S]`: demo data.

The risk app's command (it replaces trading's, which no longer exists: of two apps with a command of the same
name, Django runs the one listed first in INSTALLED_APPS, and trading comes before risk). It writes trading's
demo accounts and history (trading/management/seed.py) and the risk rows consistent with them
(risk/management/seed.py), and prints what it set.

Every run adds a fresh batch (names carry a random tag), so it can run on a populated database; the raw tokens
of that batch are written to FILE only.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from risk.management.seed import RiskSeedResult, seed_demo


class Command(BaseCommand):
    help = (
        "Create demo users, instances, positions, trades and daily statistics, rebuild the risk counters from them, "
        "set demo risk limits; write the API tokens to a file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--accounts", type=int, default=20, help="trading instances (one user each)")
        parser.add_argument("--positions", type=int, default=400, help="positions, spread evenly over the accounts")
        parser.add_argument("--tokens-out", type=Path, required=True, help="JSON file for the raw tokens (0600)")
        parser.add_argument("--seed", type=int, default=None, help="random seed for reproducible data")

    def handle(self, *args: object, accounts: int, positions: int, tokens_out: Path, seed: int | None, **options):
        if accounts < 1 or positions < 0:
            raise CommandError("--accounts must be at least 1 and --positions at least 0.")
        result = seed_demo(accounts=accounts, positions=positions, tokens_out=tokens_out, seed=seed)
        trading = result.trading
        counts = ", ".join(f"{count} {name}" for name, count in trading.counts.items())
        self.stdout.write(self.style.SUCCESS(f"seed_demo batch {trading.tag}: {counts} in {trading.seconds:.1f} s"))
        self.stdout.write(f"Operator: {trading.operator_username} (staff). Tokens written to {tokens_out}.")
        self._report_risk(result)

    def _report_risk(self, result: RiskSeedResult) -> None:
        portfolio = result.portfolio
        self.stdout.write(
            f"Risk counters rebuilt from the positions: portfolio exposure {portfolio.exposure} over "
            f"{portfolio.position_count} positions, equity {portfolio.equity} (day start {portfolio.day_start_equity})."
        )
        symbols = ", ".join(f"{row.symbol} {row.exposure} ({row.position_count})" for row in result.symbols)
        self.stdout.write(f"Symbols: {symbols or 'none'}.")
        groups = ", ".join(
            f"{group.name} {group.exposure} (limit {group.limit_pct} x equity)" for group in result.groups
        )
        self.stdout.write(f"Correlation groups: {groups or 'none'}.")
        if result.limits_changed:
            changes = ", ".join(
                f"{name} {before} -> {after}" for name, (before, after) in result.limits_changed.items()
            )
            self.stdout.write(f"Demo portfolio default limits set: {changes} (other limits unchanged).")
        else:
            self.stdout.write("Demo portfolio default limits already in force (unchanged).")
        self.stdout.write(f"Done in {result.seconds:.1f} s (risk rows and the commit included).")
