"""The check's account row is locked FOR NO KEY UPDATE, and the reserving statement reports how long it held the rows
when it found its snapshot changed too.

- FOR UPDATE on the account row also blocked every INSERT of a row that references the account (its foreign key
  check takes FOR KEY SHARE on it): a check's rejection, recorded without locks, waited on a reservation holding the
  account, and a rejection and a reservation with the same client_order_id deadlocked (each waiting on the other's
  row). FOR NO KEY UPDATE still excludes every other locker (they all take it, and the counters' UPDATEs are no-key
  updates), and lets those inserts through. The Python lockers of the account row take the same mode
  (risk.locks.lock_account, risk.services.activation, accounts.services).
- `risk_check_reserve` answers `held` with `changed` as well: a snapshot that no longer held still kept the rows
  locked while it found out (nija_risk_portfolio_lock_held_seconds counts it).
"""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION risk_lock_check_rows(p_portfolio_id bigint, p_account_id bigint, p_symbol text)
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
    PERFORM 1 FROM accounts_tradinginstance a WHERE a.id = p_account_id FOR NO KEY UPDATE OF a;
    RETURN v_clock;
END;
$$;

CREATE OR REPLACE FUNCTION risk_check_reserve(
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
        RETURN jsonb_build_object('outcome', 'changed', 'held', extract(epoch FROM clock_timestamp() - v_clock))::text;
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
        RETURN jsonb_build_object('outcome', 'changed', 'held', extract(epoch FROM clock_timestamp() - v_clock))::text;
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

PREVIOUS = r"""
CREATE OR REPLACE FUNCTION risk_lock_check_rows(p_portfolio_id bigint, p_account_id bigint, p_symbol text)
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

CREATE OR REPLACE FUNCTION risk_check_reserve(
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


class Migration(migrations.Migration):
    dependencies = [("risk", "0012_check_in_one_statement")]

    operations = [migrations.RunSQL(CREATE, PREVIOUS)]
