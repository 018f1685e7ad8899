"""The agent API's hot-path PostgreSQL statements, as text with table placeholders.

``services.py`` formats them with the models' table names and runs them; they live here so the
write path reads as Python and the SQL can be read (and reviewed) in one place.
"""

from __future__ import annotations

# PostgreSQL applies a heartbeat in one statement, outside any explicit transaction: the
# presence upsert (only if newer, by sent_at) and, only if it applied, the compute plane's
# agent columns. Through the ORM the same work was BEGIN, a conditional UPDATE, an UPDATE and
# COMMIT: four round trips and two query compilations per heartbeat (bench/RESULTS.md).
# A data-modifying CTE runs in the statement's own transaction, so the two rows still change
# together or not at all. The upsert also covers agents registered before presence rows
# existed (the ORM path's get_or_create), with the same defaults.
PRESENCE_WRITE = """presence AS (
    INSERT INTO {presence} AS p
        (compute_plane_id, heartbeat_sent_at, applied_version, contract_version,
         kubernetes_version)
    SELECT %(plane)s, %(sent_at)s, %(applied_version)s, %(contract_version)s, ''{from_gate}
    ON CONFLICT (compute_plane_id) DO UPDATE SET
        heartbeat_sent_at = EXCLUDED.heartbeat_sent_at,
        applied_version = EXCLUDED.applied_version,
        contract_version = EXCLUDED.contract_version
    WHERE p.heartbeat_sent_at IS NULL OR p.heartbeat_sent_at < EXCLUDED.heartbeat_sent_at
    RETURNING 1
), plane AS (
    UPDATE {plane}
    SET agent_status = %(agent_status)s, agent_version = %(agent_version)s,
        agent_last_seen_at = %(now)s
    WHERE id = %(plane)s AND EXISTS (SELECT 1 FROM presence)
    RETURNING 1
)"""
HEARTBEAT = """
WITH {presence_write}
SELECT EXISTS (SELECT 1 FROM presence), (SELECT count(*) FROM plane)
"""


# The usual heartbeat on PostgreSQL: authentication and the heartbeat in ONE statement (one
# round trip instead of the lookup plus the heartbeat; bench/RESULTS.md). ``cred`` returns the
# credential only if everything authenticate_credential and check_agent_id require holds (the
# digest, not revoked, not expired, already used once, its compute plane live and the one the
# agent id names); otherwise nothing is written and the caller takes the full path, which
# answers with the precise error. A heartbeat only marks presence, so its commit does not
# wait for the WAL flush (``synchronous_commit`` off for this transaction alone): a PostgreSQL
# crash can lose the last fraction of a second of heartbeats, which the agents send again
# within their interval. ``cfg`` is referenced so that PostgreSQL evaluates it.
CREDENTIAL_GATE = """cfg AS (
    SELECT set_config('synchronous_commit', 'off', true)
), cred AS (
    SELECT c.id, c.expires_at, c.replaced_by_id
    FROM {credential} c JOIN {plane} cp ON cp.id = c.compute_plane_id
    WHERE c.id = %(credential)s AND c.digest = %(digest)s AND c.revoked_at IS NULL
      AND c.expires_at > %(now)s AND c.first_used_at IS NOT NULL
      AND cp.deleted_at IS NULL AND c.compute_plane_id = %(plane)s
)"""
# The presence write behind the gate (``from_gate`` = ``FROM cred``): no row back, nothing written.
FAST_HEARTBEAT = """
WITH {gate}, {presence_write}
SELECT cred.id, cred.expires_at, cred.replaced_by_id, (SELECT count(*) FROM cfg)
FROM cred
"""


# PostgreSQL stores and applies a status report in one statement: the report record
# (ON CONFLICT DO NOTHING: a replay inserts nothing) and, only if it was inserted, the observed
# state upsert (only if newer, by sent_at). Through the ORM this was BEGIN, INSERT, UPDATE,
# COMMIT; one statement is atomic on its own, so "recorded" and "applied" still cannot part.
STATUS = """
WITH report AS (
    INSERT INTO {report} (compute_plane_id, kind, report_id, received_at, result)
    VALUES (%(plane)s, %(kind)s, %(report_id)s, %(now)s, %(result)s)
    ON CONFLICT (compute_plane_id, kind, report_id) DO NOTHING
    RETURNING 1
), observed AS ({observed_upsert}
SELECT EXISTS (SELECT 1 FROM report), EXISTS (SELECT 1 FROM observed)
"""
# The same behind the credential gate (see FAST_HEARTBEAT): no row when the credential
# does not hold, and then nothing was written.
FAST_STATUS = """
WITH {gate}, report AS (
    INSERT INTO {report} (compute_plane_id, kind, report_id, received_at, result)
    SELECT %(plane)s, %(kind)s, %(report_id)s, %(now)s, %(result)s FROM cred
    ON CONFLICT (compute_plane_id, kind, report_id) DO NOTHING
    RETURNING 1
), observed AS ({observed_upsert}
SELECT EXISTS (SELECT 1 FROM report), EXISTS (SELECT 1 FROM observed), (SELECT count(*) FROM cfg)
FROM cred
"""
OBSERVED_UPSERT = """
    INSERT INTO {observed} AS o (compute_plane_id, document, observed_at, received_at)
    SELECT %(plane)s, %(document)s, %(sent_at)s, %(now)s WHERE EXISTS (SELECT 1 FROM report)
    ON CONFLICT (compute_plane_id) DO UPDATE SET
        document = EXCLUDED.document,
        observed_at = EXCLUDED.observed_at,
        received_at = EXCLUDED.received_at
    WHERE o.observed_at < EXCLUDED.observed_at
    RETURNING 1
)"""
