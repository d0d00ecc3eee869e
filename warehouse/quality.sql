-- Data quality: what the warehouse contract (Great Expectations, warehouse/contract.py) checks and what it found.
-- The contract's expectations, replaced at every sink start (warehouse/quality.py): one row per expectation of
-- each kind's suite, with the rule a reject names (`id_number must match ^...$`).
CREATE TABLE IF NOT EXISTS quality_expectations (
    kind VARCHAR NOT NULL, target_table VARCHAR NOT NULL, expectation_type VARCHAR NOT NULL,
    checked_column VARCHAR, parameters VARCHAR, rule VARCHAR
);
-- Every validation of a micro-batch, written in the transaction of the batch it describes and naming the
-- batch's first message (topic, partition, message_offset, topic_id); a batch written again after a replay
-- (its first message is stored already) adds none, so it counts once.
-- Per batch, lane (record: per-record messages; bulk: the changed rows of canonical.batches) and kind: one row
-- for the whole suite (expectation_type NULL: rows checked, rows that broke any rule, the rows per source);
-- when a row broke a rule, one row per expectation of the suite too, with Great Expectations' own counts.
-- A failing row is named by its source and ids (the first few), never by its values (parameters is JSON).
CREATE TABLE IF NOT EXISTS quality_results (
    topic VARCHAR, partition INTEGER, message_offset BIGINT, topic_id VARCHAR,
    lane VARCHAR NOT NULL, checked_at TIMESTAMPTZ NOT NULL, kind VARCHAR NOT NULL,
    expectation_type VARCHAR, checked_column VARCHAR, parameters VARCHAR,
    success BOOLEAN NOT NULL, element_count BIGINT NOT NULL, unexpected_count BIGINT NOT NULL,
    unexpected_percent DOUBLE,
    sources VARCHAR[], source_rows BIGINT[],
    failing_sources VARCHAR[], failing_source_rows BIGINT[],
    failing_record_uids VARCHAR[], failing_source_record_ids VARCHAR[]
);
