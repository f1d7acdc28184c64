"""`risk_lock_check_scope` takes the portfolio's id from its caller (risk.locks passes risk.defaults.PORTFOLIO_ID)
instead of a 1 written into the function; its locks keep the declared order of risk.locks.LOCK_ORDER (portfolio,
symbol, correlation group, account), which tests/risk/test_lock_order.py holds it to.
"""

import importlib

from django.db import migrations

CREATE = r"""
DROP FUNCTION IF EXISTS risk_lock_check_scope(bigint, text, text);
CREATE FUNCTION risk_lock_check_scope(
    p_portfolio_id bigint, p_account_id bigint, p_symbol text, p_client_order_id text
)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_portfolio jsonb;
    v_clock timestamptz;
    v_symbol jsonb;
    v_group jsonb;
    v_account jsonb;
    v_existing jsonb;
BEGIN
    SELECT to_jsonb(p) INTO v_portfolio FROM risk_portfolio p WHERE p.id = p_portfolio_id FOR UPDATE;
    v_clock := clock_timestamp();
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
    SELECT to_jsonb(a) || jsonb_build_object('user_is_active', u.is_active) INTO v_account
    FROM accounts_tradinginstance a JOIN accounts_user u ON u.id = a.user_id
    WHERE a.id = p_account_id
    FOR UPDATE OF a;
    IF v_account IS NULL THEN
        RETURN NULL;
    END IF;
    IF p_client_order_id IS NOT NULL THEN
        SELECT to_jsonb(x) INTO v_existing FROM trading_position x
        WHERE x.instance_id = p_account_id AND x.client_order_id = p_client_order_id;
    END IF;
    RETURN jsonb_build_object(
        'portfolio', v_portfolio,
        'clock', v_clock,
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

DROP = "DROP FUNCTION IF EXISTS risk_lock_check_scope(bigint, bigint, text, text);\n"
PREVIOUS = importlib.import_module("risk.migrations.0008_lock_check_scope_clock").CREATE


class Migration(migrations.Migration):
    dependencies = [("risk", "0010_heartbeat_watchdog")]

    operations = [migrations.RunSQL(CREATE, DROP + PREVIOUS)]
