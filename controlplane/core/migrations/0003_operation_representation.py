"""Operation.representation and the triggers that clear it when what it shows changes.

Any write that changes a column the API shows (on the operation, or on one of its steps)
sets ``representation`` to NULL in the same statement's transaction, whoever the writer is;
controlplane/core/representation.py rebuilds it. The step trigger updates the operation row
unconditionally, so it waits for a rebuild holding that row's lock and clears its result
after it commits, instead of racing it.
"""

from django.db import migrations, models

# The columns compared are exactly those the API shows (representation.build).
CREATE = """
CREATE FUNCTION core_operation_representation_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.representation := NULL;
    ELSIF ROW(NEW.id, NEW.kind, NEW.target_type, NEW.target_id, NEW.status, NEW.progress,
              NEW.error_code, NEW.error_message, NEW.attempts, NEW.created_at, NEW.started_at,
              NEW.finished_at)
          IS DISTINCT FROM
          ROW(OLD.id, OLD.kind, OLD.target_type, OLD.target_id, OLD.status, OLD.progress,
              OLD.error_code, OLD.error_message, OLD.attempts, OLD.created_at, OLD.started_at,
              OLD.finished_at) THEN
        NEW.representation := NULL;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER core_operation_representation_guard
BEFORE INSERT OR UPDATE ON core_operation
FOR EACH ROW EXECUTE FUNCTION core_operation_representation_guard();

CREATE FUNCTION core_operationstep_clears_representation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND ROW(NEW.operation_id, NEW.position, NEW.name, NEW.status, NEW.attempts,
               NEW.started_at, NEW.finished_at, NEW.detail)
           IS NOT DISTINCT FROM
           ROW(OLD.operation_id, OLD.position, OLD.name, OLD.status, OLD.attempts,
               OLD.started_at, OLD.finished_at, OLD.detail) THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE core_operation SET representation = NULL WHERE id = OLD.operation_id;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.operation_id <> OLD.operation_id) THEN
        UPDATE core_operation SET representation = NULL WHERE id = NEW.operation_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER core_operationstep_clears_representation
AFTER INSERT OR UPDATE OR DELETE ON core_operationstep
FOR EACH ROW EXECUTE FUNCTION core_operationstep_clears_representation();
"""

DROP = """
DROP TRIGGER IF EXISTS core_operationstep_clears_representation ON core_operationstep;
DROP FUNCTION IF EXISTS core_operationstep_clears_representation();
DROP TRIGGER IF EXISTS core_operation_representation_guard ON core_operation;
DROP FUNCTION IF EXISTS core_operation_representation_guard();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0002_operationstep_errors"),
    ]

    operations = [
        migrations.AddField(
            model_name="operation",
            name="representation",
            field=models.TextField(blank=True, editable=False, null=True),
        ),
        migrations.RunSQL(CREATE, DROP),
    ]
