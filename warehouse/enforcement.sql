-- The integrated enforcement bureau: its roster and powers (schemas/data/enforcement.yaml, replaced as
-- a whole by the sink at start-up, like the approval catalogue) and its enforcement cases as the
-- bureau's case system last sent them. Runs after cases.sql and entities.sql; idempotent.

CREATE TABLE IF NOT EXISTS enforcement_units (
    unit VARCHAR, name VARCHAR NOT NULL, name_en VARCHAR, kind VARCHAR NOT NULL
);
-- cells: the basic grid cells the officer inspects as a grid inspector (网格督查员).
CREATE TABLE IF NOT EXISTS enforcement_officers (
    officer_id VARCHAR, name VARCHAR NOT NULL, unit VARCHAR NOT NULL, cells VARCHAR[]
);
-- time_limit_days: days from filing (立案) within which the case must be decided (决定).
CREATE TABLE IF NOT EXISTS enforcement_powers (
    code VARCHAR, name VARCHAR NOT NULL, department VARCHAR NOT NULL, department_name VARCHAR,
    legal_basis VARCHAR, time_limit_days INTEGER NOT NULL CHECK (time_limit_days > 0)
);
CREATE TABLE IF NOT EXISTS enforcement_cases (
    case_no VARCHAR, grid_case_id VARCHAR, power_code VARCHAR NOT NULL, power_name VARCHAR,
    party_id_number VARCHAR, party_uscc VARCHAR, party_name VARCHAR, officer_id VARCHAR NOT NULL,
    squad VARCHAR, status VARCHAR NOT NULL, filed_at TIMESTAMPTZ NOT NULL, investigated_at TIMESTAMPTZ,
    notified_at TIMESTAMPTZ, decided_at TIMESTAMPTZ, executed_at TIMESTAMPTZ, closed_at TIMESTAMPTZ,
    decision VARCHAR, fine_yuan DOUBLE,
    source VARCHAR, source_record_id VARCHAR, record_uid VARCHAR, fingerprint VARCHAR,
    received_at TIMESTAMPTZ, loaded_at TIMESTAMPTZ,
    run_id VARCHAR, topic VARCHAR, partition INTEGER, message_offset BIGINT  -- lineage: the run and the message that wrote the row
);

-- One row per enforcement case with what it is linked to:
--   person_key / organisation_key  the party's golden record (by resident ID or credit code), when known
--   grid_case_status               where the grid case that started it stands (NULL without one)
--   due_at                         filed_at + the power's time limit (N calendar days = N x 24 h)
--   on_time                        decided (or closed without a decision) by due_at; NULL while neither
--   hours_to_decision              from filing to decision
CREATE OR REPLACE VIEW enforcement_case_facts AS
SELECT
    e.case_no, e.grid_case_id, c.status AS grid_case_status, c.grid_code, c.community,
    e.power_code, coalesce(e.power_name, p.name) AS power_name, p.department AS power_department,
    e.party_id_number, e.party_uscc, e.party_name,
    CASE WHEN e.party_uscc IS NOT NULL THEN 'organisation' ELSE 'person' END AS party_kind,
    pe.person_key, o.organisation_key,
    e.officer_id, e.squad, u.name AS squad_name, e.status,
    e.filed_at, e.investigated_at, e.notified_at, e.decided_at, e.executed_at, e.closed_at,
    e.filed_at + to_hours(24 * p.time_limit_days) AS due_at,
    CASE WHEN coalesce(e.decided_at, e.closed_at) IS NOT NULL
         THEN coalesce(e.decided_at, e.closed_at) <= e.filed_at + to_hours(24 * p.time_limit_days) END AS on_time,
    date_diff('second', e.filed_at, e.decided_at) / 3600.0 AS hours_to_decision,
    e.decision, e.fine_yuan
FROM enforcement_cases AS e
LEFT JOIN enforcement_powers AS p ON p.code = e.power_code
LEFT JOIN enforcement_units AS u ON u.unit = e.squad
LEFT JOIN cases AS c ON c.case_id = e.grid_case_id
LEFT JOIN people AS pe ON pe.id_number = e.party_id_number
LEFT JOIN organisations AS o ON o.uscc = e.party_uscc;

-- Every stage a case has reached, one row each, in the order of the flow.
CREATE OR REPLACE VIEW enforcement_steps AS
SELECT case_no, stage, "at" FROM (
    UNPIVOT enforcement_cases
    ON filed_at AS filing, investigated_at AS investigation, notified_at AS notice,
       decided_at AS decision, executed_at AS execution, closed_at AS closing
    INTO NAME stage VALUE "at"
);
