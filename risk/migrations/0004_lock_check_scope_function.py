"""`risk_lock_check_scope`: the check's locks and reads in one database round trip.

A pre-trade check must lock the portfolio row, the symbol row, the symbol's correlation-group row and the account
row, always in that order, then read the limits, the trading states and any earlier position with the same
client_order_id. Done as separate ORM statements that is about ten round trips while the portfolio lock is held,
and every check waits on that lock; this function does the same reads in the same order inside PostgreSQL and
returns them as one JSON text (text, so numbers reach Python as exact Decimals, never floats).
"""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION risk_lock_check_scope(p_account_id bigint, p_symbol text, p_client_order_id text)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_portfolio jsonb;
    v_symbol jsonb;
    v_group jsonb;
    v_account jsonb;
    v_existing jsonb;
BEGIN
    SELECT to_jsonb(p) INTO v_portfolio FROM risk_portfolio p WHERE p.id = 1 FOR UPDATE;
    IF p_symbol IS NOT NULL THEN
        SELECT to_jsonb(s) INTO v_symbol FROM risk_symbolexposure s WHERE s.symbol = p_symbol FOR UPDATE;
        IF v_symbol IS NULL THEN
            INSERT INTO risk_symbolexposure (symbol, exposure, position_count, updated_at)
            VALUES (p_symbol, 0, 0, now()) ON CONFLICT DO NOTHING;
            SELECT to_jsonb(s) INTO v_symbol FROM risk_symbolexposure s WHERE s.symbol = p_symbol FOR UPDATE;
        END IF;
        SELECT to_jsonb(g) INTO v_group
        FROM risk_correlationgroup g JOIN risk_correlationgroupmember m ON m.group_id = g.id
        WHERE m.symbol = p_symbol
        FOR UPDATE OF g;
    END IF;
    SELECT to_jsonb(a) INTO v_account FROM accounts_tradinginstance a WHERE a.id = p_account_id FOR UPDATE;
    IF v_account IS NULL THEN
        RETURN NULL;
    END IF;
    IF p_client_order_id IS NOT NULL THEN
        SELECT to_jsonb(x) INTO v_existing FROM trading_position x
        WHERE x.instance_id = p_account_id AND x.client_order_id = p_client_order_id;
    END IF;
    RETURN jsonb_build_object(
        'portfolio', v_portfolio,
        'symbol', v_symbol,
        'group', v_group,
        'account', v_account,
        'existing', v_existing,
        'limits', (SELECT jsonb_agg(to_jsonb(l)) FROM risk_risklimits l
                   WHERE l.instance_id IS NULL OR l.instance_id = p_account_id),
        'states', (SELECT jsonb_agg(jsonb_build_object('instance_id', t.instance_id, 'state', t.state))
                   FROM risk_tradingstate t WHERE t.instance_id IS NULL OR t.instance_id = p_account_id)
    )::text;
END;
$$;
"""

DROP = "DROP FUNCTION IF EXISTS risk_lock_check_scope(bigint, text, text);"


class Migration(migrations.Migration):
    dependencies = [("risk", "0003_risk_roles"), ("trading", "0002_position_risk_fields")]

    operations = [migrations.RunSQL(CREATE, DROP)]
