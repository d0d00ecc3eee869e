-- The warehouse: one table per canonical kind of the event side, plus rejects, the
-- intake ledger and the sink's own offsets. Every row keeps the provenance of the
-- record that last set it (source, source_record_id, record_uid, received_at, loaded_at).
-- Base data on people, organisations, places and objects lives in entities.sql.
-- No table declares a primary key: the sink is the only writer and keeps every key unique
-- (warehouse/upsert.py replaces rows by key, ledgers insert only unseen record_uids), which
-- costs a tenth of maintaining DuckDB's key indexes on a million-row register.
CREATE TABLE IF NOT EXISTS events (
    event_id VARCHAR, category VARCHAR NOT NULL, category_name VARCHAR, department VARCHAR,
    description VARCHAR, reported_at TIMESTAMPTZ NOT NULL, reporter_id VARCHAR, lon DOUBLE, lat DOUBLE,
    coord_system VARCHAR, photo_refs VARCHAR[], status VARCHAR NOT NULL,
    grid_code VARCHAR, squad VARCHAR, community VARCHAR, case_id VARCHAR,
    subject_id_number VARCHAR, subject_uscc VARCHAR, object_id VARCHAR, place_id VARCHAR,
    source VARCHAR, source_record_id VARCHAR, record_uid VARCHAR, fingerprint VARCHAR,
    received_at TIMESTAMPTZ, loaded_at TIMESTAMPTZ,
    run_id VARCHAR, topic VARCHAR, partition INTEGER, message_offset BIGINT  -- lineage: the run and the message that wrote the row
);
CREATE TABLE IF NOT EXISTS event_updates (
    update_id VARCHAR, event_id VARCHAR NOT NULL, status VARCHAR NOT NULL, occurred_at TIMESTAMPTZ NOT NULL,
    actor VARCHAR, actor_role VARCHAR, note VARCHAR, photo_ref VARCHAR, new_due_at TIMESTAMPTZ, department VARCHAR,
    source VARCHAR, source_record_id VARCHAR, record_uid VARCHAR, fingerprint VARCHAR,
    received_at TIMESTAMPTZ, loaded_at TIMESTAMPTZ,
    run_id VARCHAR, topic VARCHAR, partition INTEGER, message_offset BIGINT  -- lineage: the run and the message that wrote the row
);
CREATE TABLE IF NOT EXISTS applications (
    application_id VARCHAR, item_code VARCHAR NOT NULL, item_name VARCHAR,
    applicant_id_number VARCHAR, applicant_uscc VARCHAR, status VARCHAR NOT NULL,
    submitted_at TIMESTAMPTZ, updated_at TIMESTAMPTZ,
    source VARCHAR, source_record_id VARCHAR, record_uid VARCHAR, fingerprint VARCHAR,
    received_at TIMESTAMPTZ, loaded_at TIMESTAMPTZ,
    window_no INTEGER, channel VARCHAR,
    run_id VARCHAR, topic VARCHAR, partition INTEGER, message_offset BIGINT  -- lineage: the run and the message that wrote the row
);
CREATE TABLE IF NOT EXISTS patrol_tracks (
    worker_id VARCHAR, recorded_at TIMESTAMPTZ, lat DOUBLE, lon DOUBLE, grid_code VARCHAR,
    source VARCHAR, source_record_id VARCHAR, record_uid VARCHAR, fingerprint VARCHAR,
    received_at TIMESTAMPTZ, loaded_at TIMESTAMPTZ,
    run_id VARCHAR, topic VARCHAR, partition INTEGER, message_offset BIGINT  -- lineage: the run and the message that wrote the row
);
-- A reject of a Kafka message says where it sits (topic, partition, message_offset) and, besides the
-- reason, the error that refused it; payload is NULL when it was larger than a reject keeps
-- (schemas/rejects.py), and payload_sha256 and payload_bytes then say what it was.
CREATE TABLE IF NOT EXISTS rejects (
    record_uid VARCHAR, source VARCHAR, source_record_id VARCHAR, entity VARCHAR,
    stage VARCHAR, reason_code VARCHAR, reason VARCHAR, payload VARCHAR, run_id VARCHAR,
    rejected_at TIMESTAMPTZ, topic VARCHAR, partition INTEGER, message_offset BIGINT, error VARCHAR,
    payload_sha256 VARCHAR, payload_bytes BIGINT,
    -- A later outcome of the same source record closes the reject: landed (new, update or duplicate,
    -- e.g. after `gridhub rejects replay` or a corrected resend) or rejected again (superseded).
    resolved_at TIMESTAMPTZ, resolution VARCHAR, resolved_by VARCHAR
);
-- One row per raw record taken in: what became of it. ingest --wait counts these.
CREATE TABLE IF NOT EXISTS intake (
    record_uid VARCHAR, run_id VARCHAR, source VARCHAR, source_record_id VARCHAR,
    entity VARCHAR, outcome VARCHAR NOT NULL, reason_code VARCHAR,
    received_at TIMESTAMPTZ, processed_at TIMESTAMPTZ, written_at TIMESTAMPTZ
);
-- The sink's position, committed in the same transaction as the rows it wrote.
CREATE TABLE IF NOT EXISTS sink_offsets (
    topic VARCHAR, partition INTEGER, next_offset BIGINT NOT NULL, topic_id VARCHAR NOT NULL
);
