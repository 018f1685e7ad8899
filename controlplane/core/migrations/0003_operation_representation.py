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

# SQLite (the sandbox's embedded default) has no plpgsql: the same rules as SQLite triggers.
# An INSERT clears the value; an UPDATE that changes a shown column clears it (the engine's
# own write of ``representation`` changes none, so it stands); any change to a step clears
# its operation's.
_OP_COLUMNS = (
    "id",
    "kind",
    "target_type",
    "target_id",
    "status",
    "progress",
    "error_code",
    "error_message",
    "attempts",
    "created_at",
    "started_at",
    "finished_at",
)
_STEP_COLUMNS = (
    "operation_id",
    "position",
    "name",
    "status",
    "attempts",
    "started_at",
    "finished_at",
    "detail",
)


def _changed(columns: tuple[str, ...]) -> str:
    return " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)


SQLITE_CREATE = [
    """CREATE TRIGGER core_operation_representation_insert AFTER INSERT ON core_operation
    BEGIN UPDATE core_operation SET representation = NULL WHERE id = NEW.id; END""",
    f"""CREATE TRIGGER core_operation_representation_update AFTER UPDATE ON core_operation
    WHEN {_changed(_OP_COLUMNS)}
    BEGIN UPDATE core_operation SET representation = NULL WHERE id = NEW.id; END""",
    """CREATE TRIGGER core_operationstep_representation_insert AFTER INSERT ON core_operationstep
    BEGIN UPDATE core_operation SET representation = NULL WHERE id = NEW.operation_id; END""",
    f"""CREATE TRIGGER core_operationstep_representation_update
    AFTER UPDATE ON core_operationstep WHEN {_changed(_STEP_COLUMNS)}
    BEGIN
        UPDATE core_operation SET representation = NULL
        WHERE id IN (OLD.operation_id, NEW.operation_id);
    END""",
    """CREATE TRIGGER core_operationstep_representation_delete AFTER DELETE ON core_operationstep
    BEGIN UPDATE core_operation SET representation = NULL WHERE id = OLD.operation_id; END""",
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {name}"
    for name in (
        "core_operation_representation_insert",
        "core_operation_representation_update",
        "core_operationstep_representation_insert",
        "core_operationstep_representation_update",
        "core_operationstep_representation_delete",
    )
]


def _run(statements_by_vendor: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


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
        migrations.RunPython(
            _run({"postgresql": [CREATE], "sqlite": SQLITE_CREATE}),
            _run({"postgresql": [DROP], "sqlite": SQLITE_DROP}),
        ),
    ]
