-- The run ledger: every ingest, watched file, REST pull and approvals poll that published something,
-- as its door announced it on the `runs` topic (schemas/runs.py), one row per run. The sink keeps a
-- run's last word (warehouse/runs.py): an end (published, failed) is never undone by a start read
-- again, and of two ends the later stands. What became of each record of a run is in `intake`.
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR, kind VARCHAR NOT NULL, source VARCHAR NOT NULL, entity VARCHAR, origin VARCHAR,
    started_by VARCHAR, started_at TIMESTAMPTZ NOT NULL, ended_at TIMESTAMPTZ, state VARCHAR NOT NULL,
    published BIGINT, refused BIGINT, error VARCHAR, noticed_at TIMESTAMPTZ
);
-- Each run with what the intake ledger says of its records, and its status: running, failed, published
-- (the door sent everything, the warehouse has not accounted for all of it yet) or complete (the
-- ledger holds an outcome for every record the run published and every one it refused itself).
CREATE OR REPLACE VIEW run_summary AS
WITH outcomes AS (
    SELECT run_id, count(*) AS accounted,
        count(*) FILTER (WHERE outcome = 'new') AS new,
        count(*) FILTER (WHERE outcome = 'update') AS updated,
        count(*) FILTER (WHERE outcome = 'duplicate') AS duplicate,
        count(*) FILTER (WHERE outcome = 'rejected') AS rejected,
        max(written_at) AS landed_at
    FROM intake WHERE run_id IN (SELECT run_id FROM runs) GROUP BY run_id
), reasons AS (
    SELECT run_id, string_agg(reason_code || ' ' || records, ', ' ORDER BY records DESC, reason_code) AS rejected_by_reason
    FROM (
        SELECT run_id, coalesce(reason_code, 'unknown') AS reason_code, count(*) AS records
        FROM intake WHERE outcome = 'rejected' AND run_id IN (SELECT run_id FROM runs) GROUP BY ALL
    ) GROUP BY run_id
)
SELECT r.run_id, r.kind, r.source, r.entity, r.origin, r.started_by, r.started_at, r.ended_at,
    CASE WHEN r.state = 'published' AND coalesce(o.accounted, 0) >= r.published + r.refused THEN 'complete'
         ELSE r.state END AS status,
    r.published, r.refused, coalesce(o.accounted, 0) AS accounted,
    coalesce(o.new, 0) AS new, coalesce(o.updated, 0) AS updated, coalesce(o.duplicate, 0) AS duplicate,
    coalesce(o.rejected, 0) AS rejected, x.rejected_by_reason, o.landed_at, r.error
FROM runs r LEFT JOIN outcomes o USING (run_id) LEFT JOIN reasons x USING (run_id);
-- A run's rejected records by reason code, with one reject's sentence as an example of the reason.
CREATE OR REPLACE VIEW run_rejects AS
SELECT i.run_id, i.source, coalesce(i.reason_code, 'unknown') AS reason_code, count(*) AS records,
    min(j.reason) AS example
FROM intake i LEFT JOIN rejects j ON j.record_uid = i.record_uid
WHERE i.outcome = 'rejected' AND i.run_id IN (SELECT run_id FROM runs)
GROUP BY ALL;
