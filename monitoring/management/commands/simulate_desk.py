"""`python manage.py simulate_desk`: the living demo desk (`make run` starts it as its own process; `DEMO=0`
leaves it out).

It ensures the demo alert rules (an account drawdown and a silent bot), reads the demo tokens seed_demo wrote,
and drives those accounts through the public HTTP API (monitoring/simulator/desk.py) until stopped, or for
`--iterations` steps or `--duration` seconds.
"""

import json
import os
import signal
from decimal import Decimal
from pathlib import Path
from types import FrameType

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitoring.alerts.services.rules import alert_rules_ensure_demo
from monitoring.simulator.desk import DeskConfig, DeskSimulator
from trading.management.seed import SYMBOLS


class Command(BaseCommand):
    help = "Drive the demo accounts through the HTTP API: prices, heartbeats, equity, checks, fills and closes."

    def add_arguments(self, parser: CommandParser) -> None:
        default_url = f"http://127.0.0.1:{os.environ.get('WEB_PORT', '8000')}"
        parser.add_argument("--base-url", default=default_url, help=f"the web process (default {default_url})")
        parser.add_argument("--tokens", type=Path, default=settings.VAR_DIR / "demo-tokens.json")
        parser.add_argument("--accounts", type=int, default=20, help="how many of the file's accounts to drive")
        parser.add_argument(
            "--rate", type=float, default=os.environ.get("DEMO_RATE", "4"), help="requests a second in all (0: unpaced)"
        )
        parser.add_argument("--seed", type=int, default=None, help="random seed for reproducible choices")
        parser.add_argument("--iterations", type=int, default=None, help="stop after this many steps")
        parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")

    def handle(self, *args: object, **options: object) -> None:
        config = self._config(**options)
        created = [rule.name for rule, was_created in alert_rules_ensure_demo() if was_created]
        if created:
            self.stdout.write(f"Demo alert rules created: {', '.join(created)}.")
        signal.signal(signal.SIGTERM, _stop)
        self.stdout.write(f"Demo desk: {len(config.accounts)} accounts on {config.base_url}, {config.rate} req/s.")
        try:
            stats = DeskSimulator(config).run()
        except KeyboardInterrupt:
            return
        self.stdout.write(f"Demo desk done: {dict(sorted(stats.items()))}")

    @staticmethod
    def _config(*, base_url, tokens, accounts, rate, seed, iterations, duration, **options) -> DeskConfig:
        if accounts < 1 or rate < 0:
            raise CommandError("--accounts must be at least 1 and --rate at least 0.")
        try:
            payload = json.loads(Path(tokens).read_text())
            driven = tuple((int(row["id"]), str(row["token"])) for row in payload["accounts"][:accounts])
            operator_token = str(payload["operator_token"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CommandError(f"{tokens}: no demo tokens ({error}); run seed_demo --tokens-out {tokens}.") from None
        if not driven:
            raise CommandError(f"{tokens} lists no accounts.")
        return DeskConfig(
            base_url=base_url.rstrip("/"),
            operator_token=operator_token,
            accounts=driven,
            reference_prices={symbol: Decimal(str(price)) for symbol, (price, _) in SYMBOLS.items()},
            seed=seed,
            rate=rate,
            iterations=iterations,
            duration=duration,
        )


def _stop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (honcho's stop) ends the desk as Ctrl-C does."""
    raise KeyboardInterrupt
