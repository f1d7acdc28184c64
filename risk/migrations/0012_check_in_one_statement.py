"""The check's rows in one function for every use, and a reservation in one statement that re-verifies its decision.

- `risk_check_scope_json` reads what a check decides on (the portfolio, symbol, correlation-group and account rows,
  the limits and trading states, any earlier position with the client_order_id) as JSON, without locking.
- `risk_lock_check_rows` locks the rows in the declared order (risk.locks.LOCK_ORDER: portfolio, symbol, group,
  account; the symbol's row created on its first check) and answers the clock read once the portfolio row was
  granted; `risk_lock_check_scope` answers `risk_check_scope_json` of the rows it locked: the locked check's read.
- `risk_read_check_scope` is its read-only variant: no lock, no symbol row created (dry runs, and the snapshot a
  check first decides on).
- `risk_check_inputs` is everything in that JSON but the counters a reservation moves (exposures, position counts,
  the symbol row) and columns no rule reads (heartbeats, the clock, the earlier position): what must be unchanged
  for a decision on a snapshot to still be the decision. The snapshot carries its digest (`inputs_digest`).
- `risk_check_reserve` takes a decision made on a snapshot and, in one statement, locks the rows (through
  `risk_lock_check_rows`), finds the inputs unchanged (the same digest), the equity report still fresh, the UTC day not rolled, no
  earlier position with the client_order_id and every counter within the decision's bounds
  (risk.engine.bounds), then inserts the position and moves every counter. Otherwise it changes nothing and answers
  `changed` (the caller then runs the locked check). Called in autocommit, its COMMIT rides on the same round trip,
  so no Python runs while the rows are locked.
"""

import importlib

from django.db import migrations

CREATE = r"""
CREATE FUNCTION risk_check_scope_json(
    p_portfolio_id bigint, p_account_id bigint, p_symbol text, p_client_order_id text, p_clock timestamptz
)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
    v_account jsonb;
BEGIN
    SELECT to_jsonb(a) || jsonb_build_object('user_is_active', u.is_active) INTO v_account
    FROM accounts_tradinginstance a JOIN accounts_user u ON u.id = a.user_id
    WHERE a.id = p_account_id;
    IF v_account IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN jsonb_build_object(
        'portfolio', (SELECT to_jsonb(p) FROM risk_portfolio p WHERE p.id = p_portfolio_id),
        -- No clock given (an unlocked read): PostgreSQL's, read within this statement, after its snapshot was taken,
        -- so that every change the read saw committed before this time.
        'clock', COALESCE(p_clock, clock_timestamp()),
        'symbol', (SELECT to_jsonb(s) FROM risk_symbolexposure s WHERE s.symbol = p_symbol),
        'group', (SELECT to_jsonb(g) FROM risk_correlationgroup g JOIN risk_correlationgroupmember m
                  ON m.group_id = g.id WHERE m.symbol = p_symbol),
        'account', v_account,
        'existing', (SELECT to_jsonb(x) FROM trading_position x
                     WHERE x.instance_id = p_account_id AND x.client_order_id = p_client_order_id),
        'limits', (SELECT jsonb_agg(to_jsonb(l) ORDER BY l.instance_id NULLS FIRST) FROM risk_risklimits l
                   WHERE l.instance_id IS NULL OR l.instance_id = p_account_id),
        'states', (SELECT jsonb_agg(jsonb_build_object('instance_id', t.instance_id, 'state', t.state)
                                    ORDER BY t.instance_id NULLS FIRST)
                   FROM risk_tradingstate t WHERE t.instance_id IS NULL OR t.instance_id = p_account_id)
    );
END;
$$;

CREATE FUNCTION risk_lock_check_rows(p_portfolio_id bigint, p_account_id bigint, p_symbol text)
RETURNS timestamptz
LANGUAGE plpgsql
AS $$
DECLARE
    v_clock timestamptz;
BEGIN
    PERFORM 1 FROM risk_portfolio p WHERE p.id = p_portfolio_id FOR UPDATE;
    v_clock := clock_timestamp();
    IF p_symbol IS NOT NULL THEN
        PERFORM 1 FROM risk_symbolexposure s WHERE s.symbol = p_symbol FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO risk_symbolexposure (symbol, exposure, position_count, updated_at)
            VALUES (p_symbol, 0, 0, now()) ON CONFLICT DO NOTHING;
            PERFORM 1 FROM risk_symbolexposure s WHERE s.symbol = p_symbol FOR UPDATE;
        END IF;
        PERFORM 1 FROM risk_correlationgroup g JOIN risk_correlationgroupmember m ON m.group_id = g.id
        WHERE m.symbol = p_symbol
        FOR UPDATE OF g;
    END IF;
    PERFORM 1 FROM accounts_tradinginstance a WHERE a.id = p_account_id FOR UPDATE OF a;
    RETURN v_clock;
END;
$$;

DROP FUNCTION IF EXISTS risk_lock_check_scope(bigint, bigint, text, text);
CREATE FUNCTION risk_lock_check_scope(
    p_portfolio_id bigint, p_account_id bigint, p_symbol text, p_client_order_id text
)
RETURNS text
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN risk_check_scope_json(
        p_portfolio_id, p_account_id, p_symbol, p_client_order_id,
        risk_lock_check_rows(p_portfolio_id, p_account_id, p_symbol)
    )::text;
END;
$$;

CREATE FUNCTION risk_check_inputs(p_scope jsonb)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT jsonb_build_object(
        'portfolio', (p_scope -> 'portfolio') - ARRAY['exposure', 'position_count'],
        'group', CASE WHEN jsonb_typeof(p_scope -> 'group') = 'object' THEN (p_scope -> 'group') - 'exposure' END,
        'account', (p_scope -> 'account')
            - ARRAY['exposure', 'position_count', 'last_heartbeat', 'heartbeat_lost_at', 'updated_at'],
        'limits', p_scope -> 'limits',
        'states', p_scope -> 'states'
    )
$$;

CREATE FUNCTION risk_check_inputs_digest(p_scope jsonb)
RETURNS text
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT md5(risk_check_inputs(p_scope)::text)
$$;

CREATE FUNCTION risk_read_check_scope(
    p_portfolio_id bigint, p_account_id bigint, p_symbol text, p_client_order_id text
)
RETURNS text
LANGUAGE sql
AS $$
    SELECT (scope || jsonb_build_object('inputs_digest', risk_check_inputs_digest(scope)))::text
    FROM risk_check_scope_json(p_portfolio_id, p_account_id, p_symbol, p_client_order_id, NULL) AS scope
$$;

CREATE FUNCTION risk_check_reserve(
    p_portfolio_id bigint,
    p_account_id bigint,
    p_symbol text,
    p_client_order_id text,
    p_inputs_digest text,
    p_fresh_until timestamptz,
    p_bounds jsonb,
    p_ttl interval,
    p_position jsonb
)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_scope jsonb;
    v_clock timestamptz;
    v_notional numeric := (p_bounds ->> 'notional')::numeric;
    v_account_exposure numeric;
    v_holds boolean;
    v_id bigint;
BEGIN
    v_clock := risk_lock_check_rows(p_portfolio_id, p_account_id, p_symbol);
    v_scope := risk_check_scope_json(p_portfolio_id, p_account_id, p_symbol, p_client_order_id, v_clock);
    IF v_scope IS NULL THEN
        RETURN jsonb_build_object('outcome', 'changed')::text;
    END IF;
    v_account_exposure := (v_scope -> 'account' ->> 'exposure')::numeric;
    -- Every condition must be true; one that is NULL (a missing row or figure) counts as not met.
    v_holds := COALESCE(
        v_scope -> 'existing' = 'null'::jsonb
        AND risk_check_inputs_digest(v_scope) = p_inputs_digest
        AND v_clock <= p_fresh_until
        AND (v_clock AT TIME ZONE 'UTC')::date = (v_scope -> 'portfolio' ->> 'day_start_date')::date
        AND v_account_exposure + v_notional <= (p_bounds ->> 'account_exposure_cap')::numeric
        AND (v_scope -> 'portfolio' ->> 'exposure')::numeric + v_notional
            <= (p_bounds ->> 'portfolio_exposure_cap')::numeric
        AND (v_scope -> 'symbol' ->> 'exposure')::numeric + v_notional
            <= (p_bounds ->> 'symbol_exposure_cap')::numeric
        AND CASE WHEN p_bounds ->> 'group_exposure_cap' IS NULL THEN v_scope ->> 'group' IS NULL
            ELSE (v_scope -> 'group' ->> 'exposure')::numeric + v_notional
                 <= (p_bounds ->> 'group_exposure_cap')::numeric END
        AND (v_scope -> 'account' ->> 'position_count')::int < (p_bounds ->> 'account_positions_limit')::int
        AND (v_scope -> 'portfolio' ->> 'position_count')::int < (p_bounds ->> 'portfolio_positions_limit')::int,
        false
    );
    IF NOT v_holds THEN
        RETURN jsonb_build_object('outcome', 'changed')::text;
    END IF;
    INSERT INTO trading_position
    SELECT * FROM jsonb_populate_record(
        NULL::trading_position,
        p_position || jsonb_build_object(
            'id', nextval(pg_get_serial_sequence('trading_position', 'id')),
            'created_at', v_clock,
            'updated_at', v_clock,
            'decided_at', v_clock,
            'approved_at', v_clock,
            'reservation_expires_at', v_clock + p_ttl
        )
    )
    RETURNING id INTO v_id;
    UPDATE risk_portfolio SET exposure = exposure + v_notional, position_count = position_count + 1
    WHERE id = p_portfolio_id;
    UPDATE risk_symbolexposure SET exposure = exposure + v_notional, position_count = position_count + 1,
        updated_at = now()
    WHERE symbol = p_symbol;
    UPDATE risk_correlationgroup SET exposure = exposure + v_notional
    WHERE id = (v_scope -> 'group' ->> 'id')::bigint;
    UPDATE accounts_tradinginstance SET exposure = exposure + v_notional, position_count = position_count + 1
    WHERE id = p_account_id;
    RETURN jsonb_build_object(
        'outcome', 'reserved',
        'id', v_id,
        'clock', v_clock,
        -- The rows held so far (the COMMIT's WAL flush follows, then PostgreSQL releases them).
        'held', extract(epoch FROM clock_timestamp() - v_clock),
        'account_exposure', v_account_exposure + v_notional
    )::text;
END;
$$;
"""

DROP = """
DROP FUNCTION IF EXISTS risk_check_reserve(
    bigint, bigint, text, text, text, timestamptz, jsonb, interval, jsonb
);
DROP FUNCTION IF EXISTS risk_read_check_scope(bigint, bigint, text, text);
DROP FUNCTION IF EXISTS risk_check_inputs_digest(jsonb);
DROP FUNCTION IF EXISTS risk_check_inputs(jsonb);
DROP FUNCTION IF EXISTS risk_lock_check_scope(bigint, bigint, text, text);
DROP FUNCTION IF EXISTS risk_lock_check_rows(bigint, bigint, text);
DROP FUNCTION IF EXISTS risk_check_scope_json(bigint, bigint, text, text, timestamptz);
"""
PREVIOUS = importlib.import_module("risk.migrations.0011_lock_check_scope_portfolio_id").CREATE


class Migration(migrations.Migration):
    dependencies = [("risk", "0011_lock_check_scope_portfolio_id")]

    operations = [migrations.RunSQL(CREATE, DROP + PREVIOUS)]
