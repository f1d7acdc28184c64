"""Make monitoring_alertevent append-only in PostgreSQL itself: a trigger raises on every UPDATE or DELETE (as
accounts' audit record does; TRUNCATE, a table-owner operation, is left to the test flush)."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION monitoring_alertevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'monitoring_alertevent is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER monitoring_alertevent_no_update_delete
    BEFORE UPDATE OR DELETE ON monitoring_alertevent
    FOR EACH ROW EXECUTE FUNCTION monitoring_alertevent_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS monitoring_alertevent_no_update_delete ON monitoring_alertevent;
DROP FUNCTION IF EXISTS monitoring_alertevent_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0001_alerts")]

    operations = [migrations.RunSQL(CREATE, reverse_sql=DROP)]
