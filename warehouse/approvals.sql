-- The one-window service centre: the catalogue of approval items, its windows, and applications as facts.
-- Runs after schema.sql (its applications table) and is idempotent: tables are created if
-- absent, views replaced.

-- The catalogue (schemas/data/approval_items.yaml, GRIDHUB_APPROVAL_ITEMS), replaced as a whole
-- by the sink at start-up, so it always shows the catalogue the running hub judges by.
-- time_limit_days count in time_limit_unit: calendar_days from submission, or working_days on the
-- holiday calendar (calendar_days below).
CREATE TABLE IF NOT EXISTS approval_items (
    code VARCHAR, name VARCHAR NOT NULL, level VARCHAR NOT NULL,
    department VARCHAR NOT NULL, department_name VARCHAR, fully_online BOOLEAN NOT NULL,
    time_limit_days INTEGER NOT NULL CHECK (time_limit_days > 0),
    time_limit_unit VARCHAR DEFAULT 'calendar_days'
);

-- The working calendar (schemas/data/holidays.yaml, GRIDHUB_HOLIDAYS), replaced by the sink at
-- start-up: every day of a span of years, whether it is worked, and working_upto, the count of
-- working days up to and including it (so the Nth working day after D is the working day whose
-- working_upto is D's + N).
CREATE TABLE IF NOT EXISTS calendar_days (day DATE, working BOOLEAN NOT NULL, working_upto INTEGER NOT NULL);

-- The centre's service windows (the 'windows' of the same file), replaced with the catalogue:
-- the department staffing each, the clerk on duty (masked for analysts), and the items it may
-- take: all_items for every item (一窗受理), else the codes in items.
CREATE TABLE IF NOT EXISTS service_windows (
    window_no INTEGER NOT NULL, department VARCHAR NOT NULL, department_name VARCHAR,
    clerk_id VARCHAR, clerk_name VARCHAR, all_items BOOLEAN NOT NULL, items VARCHAR[]
);

-- One row per application, as it stands, with its item and its deadline.
--   due_at          submitted_at + the item's time limit: N calendar days = N x 24 h (the town's
--                   time zone has no daylight saving, so this is exact and independent of the
--                   session's TimeZone); N working days = midnight, town time, after the Nth working
--                   day following the day of submission (次日起算), as streams/applications.py counts
--                   it. NULL when the item is not in the catalogue (the stream rejects such
--                   applications; only rows stored before the catalogue can lack it) or a working-day
--                   deadline falls outside calendar_days.
--   finished        approved, refused or withdrawn: nothing more is owed to the applicant.
--   finished_at     updated_at of the finishing change (the approval system's time of it).
--   overdue         finished after due_at, or unfinished and past due_at now. The stream's alert
--                   on alerts.applications fires for the unfinished ones only.
--   applicant_kind  'organisation' when a unified social credit code is given, else 'person'.
--   window_no, channel  the window that took it and how (window, or online: 外网受理、内网办理、
--                   快递送达); NULL when the approval system did not say.
--   window_department, window_department_name  the department staffing that window, as the
--                   catalogue has it now (the clerk is not joined: the file knows today's only).
-- applicant_id_number / applicant_uscc are the keys to link people and organisations.
CREATE OR REPLACE VIEW application_facts AS
WITH facts AS (
    SELECT
        a.application_id, a.item_code, coalesce(a.item_name, i.name) AS item_name,
        i.level, i.department, i.department_name, i.fully_online, i.time_limit_days,
        a.status, a.submitted_at, a.updated_at,
        CASE WHEN i.time_limit_unit = 'working_days' THEN (
            SELECT timezone('Asia/Shanghai', CAST(target.day + 1 AS TIMESTAMP))
            FROM calendar_days AS start
            JOIN calendar_days AS target
              ON target.working AND target.working_upto = start.working_upto + i.time_limit_days
            WHERE start.day = CAST(timezone('Asia/Shanghai', a.submitted_at) AS DATE)
        ) ELSE a.submitted_at + to_hours(24 * i.time_limit_days) END AS due_at,
        a.status IN ('approved', 'refused', 'withdrawn') AS finished,
        CASE WHEN a.applicant_uscc IS NOT NULL THEN 'organisation' ELSE 'person' END AS applicant_kind,
        a.applicant_id_number, a.applicant_uscc,
        a.window_no, a.channel, w.department AS window_department, w.department_name AS window_department_name
    FROM applications AS a
    LEFT JOIN approval_items AS i ON i.code = a.item_code
    LEFT JOIN service_windows AS w ON w.window_no = a.window_no
)
SELECT
    application_id, item_code, item_name, level, department, department_name, fully_online,
    time_limit_days, status, submitted_at, updated_at, due_at, finished,
    CASE WHEN finished THEN updated_at END AS finished_at,
    CASE WHEN finished THEN updated_at > due_at ELSE now() > due_at END AS overdue,
    applicant_kind, applicant_id_number, applicant_uscc,
    window_no, channel, window_department, window_department_name
FROM facts;
