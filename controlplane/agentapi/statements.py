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


# --- write-behind batches (ingest.py) --------------------------------------------------------
# A flush applies every heartbeat or status report a web process accepted since the last one,
# as ONE statement per kind. The batch arrives as typed arrays (unnest), one element per
# report. Each report is checked again, here, against its credential as it is NOW (not
# revoked, not deleted, the plane it names) and as it was when the report was received (not
# expired then): a credential revoked after the request was answered writes nothing.
BATCH_GATE = """cfg AS (
    SELECT set_config('synchronous_commit', 'off', true)
), cred AS (
    SELECT b.*
    FROM batch b
    JOIN {credential} c ON c.id = b.credential
    JOIN {plane} cp ON cp.id = c.compute_plane_id
    WHERE c.digest = b.digest AND c.revoked_at IS NULL AND c.expires_at > b.received_at
      AND c.first_used_at IS NOT NULL AND cp.deleted_at IS NULL AND c.compute_plane_id = b.plane
)"""
# The credentials the gate refused for at least one report of the batch: the web process
# stops trusting them from memory, so their next request is authenticated in full (a 401).
REFUSED = """ARRAY(SELECT credential FROM batch EXCEPT SELECT credential FROM cred)"""
# One heartbeat per compute plane (the buffer keeps each plane's newest), so the upsert never
# meets the same row twice in one statement.
HEARTBEAT_BATCH = """
WITH batch AS (
    SELECT * FROM unnest(
        %(credential)s::text[], %(digest)s::text[], %(plane)s::text[],
        %(received_at)s::timestamptz[], %(sent_at)s::timestamptz[],
        %(applied_version)s::bigint[], %(contract_version)s::text[], %(agent_version)s::text[]
    ) AS b(credential, digest, plane, received_at, sent_at, applied_version, contract_version,
           agent_version)
), {gate}, presence AS (
    INSERT INTO {presence} AS p
        (compute_plane_id, heartbeat_sent_at, applied_version, contract_version,
         kubernetes_version)
    SELECT plane, sent_at, applied_version, contract_version, '' FROM cred ORDER BY plane
    ON CONFLICT (compute_plane_id) DO UPDATE SET
        heartbeat_sent_at = EXCLUDED.heartbeat_sent_at,
        applied_version = EXCLUDED.applied_version,
        contract_version = EXCLUDED.contract_version
    WHERE p.heartbeat_sent_at IS NULL OR p.heartbeat_sent_at < EXCLUDED.heartbeat_sent_at
    RETURNING compute_plane_id
), plane AS (
    UPDATE {plane} cp
    SET agent_status = %(agent_status)s, agent_version = cred.agent_version,
        agent_last_seen_at = cred.received_at
    FROM cred
    WHERE cp.id = cred.plane AND cp.id IN (SELECT compute_plane_id FROM presence)
    RETURNING 1
)
SELECT (SELECT count(*) FROM presence), (SELECT count(*) FROM plane), (SELECT count(*) FROM cfg),
    {refused}
"""
# Every report is recorded (ON CONFLICT DO NOTHING: a replay, even one already applied by an
# earlier flush or by the synchronous path, records nothing and applies nothing); of the
# reports recorded now, each plane's newest (by sent_at, then arrival) is the observed-state
# candidate, applied only if newer than the stored one. The answer lists the positions (in
# the batch) of the reports that were applied, one per plane at most.
STATUS_BATCH = """
WITH batch AS (
    SELECT * FROM unnest(
        %(credential)s::text[], %(digest)s::text[], %(plane)s::text[],
        %(received_at)s::timestamptz[], %(report_id)s::text[], %(result)s::jsonb[],
        %(document)s::jsonb[], %(sent_at)s::timestamptz[], %(position)s::int[]
    ) AS b(credential, digest, plane, received_at, report_id, result, document, sent_at,
           position)
), {gate}, report AS (
    INSERT INTO {report} (compute_plane_id, kind, report_id, received_at, result)
    SELECT plane, %(kind)s, report_id, received_at, result FROM cred ORDER BY plane, report_id
    ON CONFLICT (compute_plane_id, kind, report_id) DO NOTHING
    RETURNING compute_plane_id, report_id
), newest AS (
    SELECT DISTINCT ON (cred.plane) cred.plane, cred.position, cred.document, cred.sent_at,
        cred.received_at
    FROM cred
    JOIN report r ON r.compute_plane_id = cred.plane AND r.report_id = cred.report_id
    ORDER BY cred.plane, cred.sent_at DESC, cred.position DESC
), observed AS (
    INSERT INTO {observed} AS o (compute_plane_id, document, observed_at, received_at)
    SELECT plane, document, sent_at, received_at FROM newest ORDER BY plane
    ON CONFLICT (compute_plane_id) DO UPDATE SET
        document = EXCLUDED.document,
        observed_at = EXCLUDED.observed_at,
        received_at = EXCLUDED.received_at
    WHERE o.observed_at < EXCLUDED.observed_at
    RETURNING compute_plane_id
)
SELECT
    ARRAY(SELECT newest.position FROM newest
          JOIN observed ON observed.compute_plane_id = newest.plane),
    (SELECT count(*) FROM report), (SELECT count(*) FROM cfg),
    {refused}
"""
