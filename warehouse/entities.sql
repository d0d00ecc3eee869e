-- Base data: people, organisations, places (land) and objects.
--
-- Three layers. <kind>_sources keeps every source's own copy, exactly as it last sent
-- it. entity_matches says which entity each copy belongs to, how it was matched and
-- how sure the match is. The golden tables (people, organisations, places, objects)
-- hold one row per entity, each field taken from the source that survivorship ranks
-- first; field_lineage (created by the sink from the resolution rules) says which
-- source and when. match_review lists the matches too weak to make on their own.
CREATE TABLE IF NOT EXISTS person_sources (
    source VARCHAR, source_record_id VARCHAR, match_key VARCHAR,
    id_number VARCHAR, name VARCHAR NOT NULL, gender VARCHAR, birth_date DATE,
    phone VARCHAR, address VARCHAR, address_norm VARCHAR, employer_uscc VARCHAR,
    record_uid VARCHAR, fingerprint VARCHAR, received_at TIMESTAMPTZ, loaded_at TIMESTAMPTZ,
    run_id VARCHAR, topic VARCHAR, partition INTEGER, message_offset BIGINT  -- lineage: the run and the message that wrote the row
);
CREATE TABLE IF NOT EXISTS organisation_sources (
    source VARCHAR, source_record_id VARCHAR, match_key VARCHAR,
    uscc VARCHAR, name VARCHAR NOT NULL, legal_representative VARCHAR, legal_representative_id VARCHAR,
    registered_address VARCHAR, address_norm VARCHAR, phone VARCHAR,
    record_uid VARCHAR, fingerprint VARCHAR, received_at TIMESTAMPTZ, loaded_at TIMESTAMPTZ,
    run_id VARCHAR, topic VARCHAR, partition INTEGER, message_offset BIGINT  -- lineage: the run and the message that wrote the row
);
CREATE TABLE IF NOT EXISTS place_sources (
    source VARCHAR, source_record_id VARCHAR, match_key VARCHAR,
    place_id VARCHAR NOT NULL, place_type VARCHAR, name VARCHAR, address VARCHAR, address_norm VARCHAR,
    grid_code VARCHAR, lon DOUBLE, lat DOUBLE,
    record_uid VARCHAR, fingerprint VARCHAR, received_at TIMESTAMPTZ, loaded_at TIMESTAMPTZ,
    run_id VARCHAR, topic VARCHAR, partition INTEGER, message_offset BIGINT  -- lineage: the run and the message that wrote the row
);
CREATE TABLE IF NOT EXISTS object_sources (
    source VARCHAR, source_record_id VARCHAR, match_key VARCHAR,
    object_id VARCHAR NOT NULL, name VARCHAR NOT NULL, category_code VARCHAR, state VARCHAR,
    place_id VARCHAR, lon DOUBLE, lat DOUBLE,
    record_uid VARCHAR, fingerprint VARCHAR, received_at TIMESTAMPTZ, loaded_at TIMESTAMPTZ,
    run_id VARCHAR, topic VARCHAR, partition INTEGER, message_offset BIGINT  -- lineage: the run and the message that wrote the row
);
-- method: the strong key that matched (id_number, uscc, address_in_cell, object_code),
-- fuzzy (confidence = score), manual (a reviewer decided), or unmatched (its own entity,
-- keyed ~source:record).
CREATE TABLE IF NOT EXISTS entity_matches (
    kind VARCHAR, source VARCHAR, source_record_id VARCHAR, entity_key VARCHAR NOT NULL,
    method VARCHAR NOT NULL, confidence DOUBLE, matched_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS match_review (
    kind VARCHAR, source VARCHAR, source_record_id VARCHAR, candidate_key VARCHAR,
    score DOUBLE, detail VARCHAR, listed_at TIMESTAMPTZ
);
-- Reviewers' decisions (gridhub review): they override similarity for the copy they name.
CREATE TABLE IF NOT EXISTS match_decisions (
    kind VARCHAR, source VARCHAR, source_record_id VARCHAR, decision VARCHAR NOT NULL,
    entity_key VARCHAR, decided_by VARCHAR, decided_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS people (
    person_key VARCHAR, id_number VARCHAR, name VARCHAR, gender VARCHAR, birth_date DATE,
    phone VARCHAR, address VARCHAR, address_norm VARCHAR, employer_uscc VARCHAR,
    source_count INTEGER, sources VARCHAR[], first_received_at TIMESTAMPTZ, last_received_at TIMESTAMPTZ,
    resolved_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS organisations (
    organisation_key VARCHAR, uscc VARCHAR, name VARCHAR, legal_representative VARCHAR,
    legal_representative_id VARCHAR, registered_address VARCHAR, address_norm VARCHAR, phone VARCHAR,
    source_count INTEGER, sources VARCHAR[], first_received_at TIMESTAMPTZ, last_received_at TIMESTAMPTZ,
    resolved_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS places (
    place_key VARCHAR, place_id VARCHAR, place_type VARCHAR, name VARCHAR, address VARCHAR,
    address_norm VARCHAR, grid_code VARCHAR, lon DOUBLE, lat DOUBLE,
    source_count INTEGER, sources VARCHAR[], first_received_at TIMESTAMPTZ, last_received_at TIMESTAMPTZ,
    resolved_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS objects (
    object_key VARCHAR, object_id VARCHAR, name VARCHAR, category_code VARCHAR, state VARCHAR,
    place_id VARCHAR, lon DOUBLE, lat DOUBLE,
    source_count INTEGER, sources VARCHAR[], first_received_at TIMESTAMPTZ, last_received_at TIMESTAMPTZ,
    resolved_at TIMESTAMPTZ
);

-- Any source's own id of a place or object, to the entity it belongs to.
CREATE OR REPLACE VIEW place_ids AS
SELECT DISTINCT s.place_id, m.entity_key AS place_key
FROM place_sources s JOIN entity_matches m
  ON m.kind = 'place' AND m.source = s.source AND m.source_record_id = s.source_record_id;
CREATE OR REPLACE VIEW object_ids AS
SELECT DISTINCT s.object_id, m.entity_key AS object_key
FROM object_sources s JOIN entity_matches m
  ON m.kind = 'object' AND m.source = s.source AND m.source_record_id = s.source_record_id;

-- Links between the five kinds, always current because they are computed from the
-- golden records on every query. evidence names the field that makes the link.
CREATE OR REPLACE VIEW entity_links AS
SELECT 'person' AS from_kind, p.person_key AS from_key, 'lives_at' AS relation,
       'place' AS to_kind, pl.place_key AS to_key, 'address' AS evidence
FROM people p JOIN places pl ON p.address_norm = pl.address_norm
UNION ALL
SELECT 'person', p.person_key, 'works_for', 'organisation', o.organisation_key, 'employer_uscc'
FROM people p JOIN organisations o ON p.employer_uscc = o.uscc
UNION ALL
SELECT 'person', p.person_key, 'represents', 'organisation', o.organisation_key, 'legal_representative_id'
FROM organisations o JOIN people p ON o.legal_representative_id = p.id_number
UNION ALL
SELECT 'organisation', o.organisation_key, 'registered_at', 'place', pl.place_key, 'address'
FROM organisations o JOIN places pl ON o.address_norm = pl.address_norm
UNION ALL
SELECT DISTINCT 'object', ob.object_key, 'located_at', 'place', ids.place_key, 'place_id'
FROM objects ob JOIN place_ids ids ON ob.place_id = ids.place_id
UNION ALL
SELECT 'event', e.event_id, 'involves', 'person', p.person_key, 'subject_id_number'
FROM events e JOIN people p ON e.subject_id_number = p.id_number
UNION ALL
SELECT 'event', e.event_id, 'involves', 'organisation', o.organisation_key, 'subject_uscc'
FROM events e JOIN organisations o ON e.subject_uscc = o.uscc
UNION ALL
SELECT DISTINCT 'event', e.event_id, 'involves', 'object', ids.object_key, 'object_id'
FROM events e JOIN object_ids ids ON e.object_id = ids.object_id
UNION ALL
SELECT DISTINCT 'event', e.event_id, 'involves', 'place', ids.place_key, 'place_id'
FROM events e JOIN place_ids ids ON e.place_id = ids.place_id
UNION ALL
SELECT 'application', a.application_id, 'submitted_by', 'person', p.person_key, 'applicant_id_number'
FROM applications a JOIN people p ON a.applicant_id_number = p.id_number
UNION ALL
SELECT 'application', a.application_id, 'submitted_by', 'organisation', o.organisation_key, 'applicant_uscc'
FROM applications a JOIN organisations o ON a.applicant_uscc = o.uscc;

-- Everything linked to one entity, from either end: SELECT * FROM linked_to('person', '3204...').
CREATE OR REPLACE MACRO linked_to(entity_kind, entity_key) AS TABLE
SELECT relation, to_kind AS other_kind, to_key AS other_key, 'outgoing' AS direction, evidence
FROM entity_links WHERE from_kind = entity_kind AND from_key = entity_key
UNION ALL
SELECT relation, from_kind, from_key, 'incoming', evidence
FROM entity_links WHERE to_kind = entity_kind AND to_key = entity_key;
