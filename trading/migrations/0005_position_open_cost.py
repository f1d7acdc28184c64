"""Positions keep the exact cost of what is open (`open_cost`) and the entry fees not yet booked
(`open_entry_fees`), and remember when they were approved (`approved_at`).

Rows written before carry only an average entry price: their open cost becomes open quantity x that price (rounded
up, as a fill's value is), their open entry fees the open share of their fills' fees; a position that reached
approved, open or closed was approved at its decision time. Stored reasons gain their scope (whose figures they
quote: the portfolio rules' and the portfolio-wide counts, else the account's), so a bot is never shown the
portfolio's.
"""

from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


BACKFILL = """
UPDATE trading_position p SET
    open_cost = ceil((p.filled_quantity - p.closed_quantity) * p.entry_price * 100000000) / 100000000,
    open_entry_fees = trunc(
        (SELECT coalesce(sum(f.fees), 0) FROM trading_fill f WHERE f.position_id = p.id)
        * (p.filled_quantity - p.closed_quantity) / p.filled_quantity,
        8
    )
WHERE p.filled_quantity > p.closed_quantity;
UPDATE trading_position SET approved_at = coalesce(decided_at, created_at)
WHERE status IN ('approved', 'open', 'closed')
   OR (status IN ('expired', 'cancelled') AND (check_decision = 'approved' OR decided_by_id IS NOT NULL));
UPDATE trading_position SET reasons = (
    SELECT jsonb_agg(
        r || jsonb_build_object(
            'scope',
            CASE WHEN r->>'code' IN ('portfolio_exposure', 'symbol_concentration', 'correlated_exposure')
                   OR r->>'message' LIKE 'portfolio%' THEN 'portfolio' ELSE 'account' END
        ) ORDER BY n
    )
    FROM jsonb_array_elements(reasons) WITH ORDINALITY AS e(r, n)
)
WHERE jsonb_array_length(reasons) > 0;
SET CONSTRAINTS ALL IMMEDIATE;  -- run the deferred foreign-key checks now: the constraints below alter the table
"""


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_tradinginstance_balance_constraints"),
        ("trading", "0004_operator_view_roles"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="position",
            name="approved_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="position",
            name="open_cost",
            field=models.DecimalField(decimal_places=8, default=Decimal("0"), max_digits=18),
        ),
        migrations.AddField(
            model_name="position",
            name="open_entry_fees",
            field=models.DecimalField(decimal_places=8, default=Decimal("0"), max_digits=18),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.AddConstraint(
            model_name="position",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("filled_quantity__gt", models.F("closed_quantity")), ("open_cost__gt", 0)),
                    models.Q(
                        ("filled_quantity", models.F("closed_quantity")), ("open_cost", 0), ("open_entry_fees", 0)
                    ),
                    _connector="OR",
                ),
                name="position_open_cost_iff_open",
            ),
        ),
        migrations.AddConstraint(
            model_name="position",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "closed"), _negated=True),
                    ("filled_quantity", models.F("closed_quantity")),
                    _connector="OR",
                ),
                name="position_closed_has_nothing_open",
            ),
        ),
        migrations.AddConstraint(
            model_name="position",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "open"), _negated=True),
                    ("filled_quantity__gt", models.F("closed_quantity")),
                    models.Q(("filled_quantity__lt", models.F("quantity")), ("unfilled_released_at__isnull", True)),
                    _connector="OR",
                ),
                name="position_open_holds_something",
            ),
        ),
        migrations.AddConstraint(
            model_name="position",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status__in", ["approved", "open", "closed"]), _negated=True),
                    ("approved_at__isnull", False),
                    _connector="OR",
                ),
                name="position_approved_has_approved_at",
            ),
        ),
    ]
