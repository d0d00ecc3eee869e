-- The "one grid" loop in the warehouse: cases, their transition log, patrol tracks, and the
-- KPI views the command centre is judged by (domain-standards §3.4 case flow, §3.6 indicators).
-- Runs after schema.sql and is idempotent: tables are created if absent, views replaced.
-- Entity tables keep the provenance of the record that last set the row, as in schema.sql;
-- their keys are kept unique by the single writer (warehouse/upsert.py), not by an index.
-- Needs schema.sql first: the patrol views read its patrol_tracks table.
--
-- Statuses are the canonical event statuses (schemas/records.py EventStatus, case flow in
-- schemas/data/case_flow.yaml): reported, accepted, dispatched, in_handling, extended, handled,
-- verified, closed, returned, rejected, cancelled, parked (挂账).
--
-- Every local day below is the town's day, Asia/Shanghai, computed with timezone(); never a bare
-- CAST(timestamptz AS DATE), which takes the session's TimeZone setting and so depends on the
-- machine that runs the query.

-- A case (案卷) is the current state of one problem. Several reports (rows of `events`, linked by
-- events.case_id) can belong to one case; report_count says how many did.
CREATE TABLE IF NOT EXISTS cases (
    case_id VARCHAR, category VARCHAR, category_name VARCHAR, department VARCHAR,
    squad VARCHAR, grid_code VARCHAR, community VARCHAR, reporter_id VARCHAR, status VARCHAR NOT NULL,
    reported_at TIMESTAMPTZ NOT NULL, due_at TIMESTAMPTZ, accepted_at TIMESTAMPTZ, dispatched_at TIMESTAMPTZ,
    handled_at TIMESTAMPTZ, verified_at TIMESTAMPTZ, closed_at TIMESTAMPTZ,
    report_ids VARCHAR[], report_count INTEGER, seq INTEGER, rework_count INTEGER, return_count INTEGER,
    lat DOUBLE, lon DOUBLE,
    overdue_alerted BOOLEAN,
    source VARCHAR, source_record_id VARCHAR, record_uid VARCHAR, fingerprint VARCHAR,
    received_at TIMESTAMPTZ, loaded_at TIMESTAMPTZ,
    handled_by VARCHAR[],  -- who took action handle (巡办分离: none of them may verify the case)
    -- 督办: the supervision level the case's lateness reached under its current deadline (1 overdue,
    -- 2 督办, 3 挂牌督办: the escalation levels of case_flow.yaml), and when it first reached level 2.
    escalation_level INTEGER, escalated_at TIMESTAMPTZ,
    -- 挂账: the review date of its last parking, and whether it passed while the case was parked.
    review_at TIMESTAMPTZ, review_alerted BOOLEAN,
    run_id VARCHAR, topic VARCHAR, partition INTEGER, message_offset BIGINT  -- lineage: the run and the message that wrote the row
);
-- The transition log: one row per state change, with who did it, when, and the deadline in force
-- then (streams/case_state.py Transition.to_dict is one row). The KPIs count from here (§5: "KPIs
-- are pure queries over transitions"). `at` is a reserved word in DuckDB (AT TIME ZONE): quote it.
CREATE TABLE IF NOT EXISTS case_transitions (
    case_id VARCHAR NOT NULL, seq INTEGER NOT NULL, from_status VARCHAR, to_status VARCHAR NOT NULL,
    action VARCHAR, actor VARCHAR, actor_role VARCHAR, "at" TIMESTAMPTZ NOT NULL, due_at TIMESTAMPTZ,
    note VARCHAR, photo_ref VARCHAR,
    source VARCHAR, source_record_id VARCHAR, record_uid VARCHAR, fingerprint VARCHAR,
    received_at TIMESTAMPTZ, loaded_at TIMESTAMPTZ,
    run_id VARCHAR, topic VARCHAR, partition INTEGER, message_offset BIGINT  -- lineage: the run and the message that wrote the row
);
-- Patrol tracks are the `patrol_tracks` table of schema.sql (worker_id, recorded_at, lat, lon,
-- grid_code, provenance; key worker_id, recorded_at), filled by the writer from track_point
-- records. The patrol views below read it.

-- The grid the running hub places reports in (schemas/grid.py, GRIDHUB_GRID_PATH): one row per
-- cell with its squad, community and roster of grid workers. The grid is a file, not a stream: the
-- sink replaces this table as a whole at start-up, in one transaction (warehouse/grid_cells.py),
-- so it always shows the grid the hub judges by, and patrol compliance per squad can count the
-- workers who sent no track at all. A worker patrols exactly one cell (the grid checks it).
-- dedicated_to is school, hospital or park for a dedicated cell, NULL for a basic one. The cells'
-- polygons stay in the grid file (the screen draws them from there).
CREATE TABLE IF NOT EXISTS grid_cells (
    code VARCHAR NOT NULL, name VARCHAR NOT NULL, kind VARCHAR NOT NULL, dedicated_to VARCHAR,
    squad VARCHAR NOT NULL, community VARCHAR NOT NULL, workers VARCHAR[] NOT NULL
);

-- Case KPIs (§3.6) --------------------------------------------------------------------------------
--
-- The denominators are system-defined (§3.6 says so), so they are fixed here, once:
--
--   应结案数 cases due     A case not rejected (不予立案), cancelled (作废) or parked (挂账) whose
--                          due_at falls in the period OR that was closed in the period. A case
--                          without due_at that is still open is due in no period.
--   挂账数   parked        A case parked now, on the day its due_at falls (as if it were due):
--                          out of every figure above and below, counted on its own so it stays
--                          visible. Once resumed (with a new deadline) it is due again as any case.
--   督办数   escalated     Of the cases due, those still open when escalation level 2 (督办) fell due:
--                          escalated_at is that moment (the deadline plus the level's hours in
--                          case_flow.yaml), and the case was not closed by then. A case the clock
--                          found late before its closing reached the case agent (a replay, a worker
--                          down for a while) but that was closed in time for 督办 is not counted.
--                          督办率 = 督办数 / 应结案数.
--   结案数   closed        Of the cases due, those with closed_at set.
--   按期结案数 on time      Of those closed, closed_at <= due_at (closing at the deadline is on
--                          time). A closed case without a due_at had no deadline to meet and is
--                          not counted on time.
--   返工数   rework        Transitions handled -> returned (核查 failed, action `rework`) of the
--                          cases due, counted from case_transitions; a case reworked twice counts
--                          twice. A department's return before handling (dispatched -> returned,
--                          action `decline`, 回退) is not rework.
--   结案率 = 结案数 / 应结案数; 按期结案率 = 按期结案数 / 应结案数; 返工率 = 返工数 / 应结案数.
--   Time to close = closed_at - reported_at, in hours, over closed cases.
--
-- Period attribution: each case belongs to exactly one day, the Asia/Shanghai date of
-- coalesce(closed_at, due_at): the day it was closed, or, while open, the day it falls due. So the
-- per-day figures add up over any range and a case is never counted twice. Consequence: a case
-- closed after its deadline is counted on its closing day (as closed, late), not on its due day;
-- while it was still open, it counted on its due day as due and not closed, so a past day's
-- closure rate can rise when a late case is finally closed.

-- One row per case, rejected ones included (is_due false); the flags nest
-- (is_on_time => is_closed => is_due, is_escalated => is_due) so that any grouping (squad,
-- department, grid, worker) is a plain GROUP BY over the rows WHERE is_due; is_parked rows are
-- never is_due. hours_to_close is set only where is_closed;
-- rework_count is the case's rework transitions (sum it over due cases for 返工数).
CREATE OR REPLACE VIEW kpi_case_facts AS
WITH reworks AS (
    SELECT case_id, count(*) AS rework_count
    FROM case_transitions
    WHERE from_status = 'handled' AND to_status = 'returned'
    GROUP BY case_id
),
facts AS (
    SELECT
        c.case_id,
        CAST(timezone('Asia/Shanghai', coalesce(c.closed_at, c.due_at)) AS DATE) AS period_date,
        c.status NOT IN ('rejected', 'cancelled', 'parked') AND coalesce(c.closed_at, c.due_at) IS NOT NULL AS is_due,
        c.status = 'parked' AND c.due_at IS NOT NULL AS is_parked,
        c.status, c.reported_at, c.due_at, c.closed_at, c.escalation_level, c.escalated_at, c.review_at,
        coalesce(r.rework_count, 0) AS rework_count,
        c.squad, c.department, c.grid_code, c.reporter_id AS worker, c.category
    FROM cases AS c
    LEFT JOIN reworks AS r USING (case_id)
)
SELECT
    case_id, period_date, is_due,
    is_due AND closed_at IS NOT NULL AS is_closed,
    is_due AND closed_at IS NOT NULL AND coalesce(closed_at <= due_at, false) AS is_on_time,
    CASE WHEN is_due AND closed_at IS NOT NULL THEN epoch(closed_at - reported_at) / 3600.0 END AS hours_to_close,
    rework_count,
    squad, department, grid_code, worker, category, status, reported_at, due_at, closed_at,
    is_parked,
    is_due AND escalated_at IS NOT NULL AND coalesce(closed_at > escalated_at, true) AS is_escalated,
    coalesce(escalation_level, 0) AS escalation_level, escalated_at, review_at
FROM facts;

-- Patrol compliance ---------------------------------------------------------------------------------
--
-- The rule, in one place: a grid worker patrols twice a day for about an hour. Points of one worker
-- on one local day more than session_gap_minutes apart belong to different sessions; a session of
-- at least min_patrol_minutes (last point - first point) is a patrol; a worker-day with at least
-- patrols_per_day patrols is compliant. Change the numbers here and every view follows.
CREATE OR REPLACE VIEW patrol_rules AS
SELECT 20 AS session_gap_minutes, 50 AS min_patrol_minutes, 2 AS patrols_per_day;

-- One row per patrol session: a run of a worker's track points on one Asia/Shanghai day with no
-- gap longer than session_gap_minutes. Sessions never span midnight (the day is the unit judged).
CREATE OR REPLACE VIEW patrol_sessions AS
WITH points AS (
    SELECT worker_id, recorded_at, grid_code, CAST(timezone('Asia/Shanghai', recorded_at) AS DATE) AS day
    FROM patrol_tracks
),
marked AS (
    SELECT
        p.*,
        CASE
            WHEN lag(p.recorded_at) OVER w IS NULL THEN 1
            WHEN epoch(p.recorded_at) - epoch(lag(p.recorded_at) OVER w) > rules.session_gap_minutes * 60 THEN 1
            ELSE 0
        END AS starts_session
    FROM points AS p
    CROSS JOIN patrol_rules AS rules
    WINDOW w AS (PARTITION BY p.worker_id, p.day ORDER BY p.recorded_at)
),
numbered AS (
    SELECT
        *,
        sum(starts_session) OVER (
            PARTITION BY worker_id, day ORDER BY recorded_at ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS session_no
    FROM marked
),
sessions AS (
    SELECT
        worker_id, day, CAST(session_no AS INTEGER) AS session_no,
        min(recorded_at) AS started_at, max(recorded_at) AS ended_at, count(*) AS points,
        (epoch(max(recorded_at)) - epoch(min(recorded_at))) / 60.0 AS minutes,
        list(DISTINCT grid_code ORDER BY grid_code) FILTER (WHERE grid_code IS NOT NULL) AS grid_codes
    FROM numbered
    GROUP BY worker_id, day, session_no
)
SELECT s.*, s.minutes >= rules.min_patrol_minutes AS is_patrol
FROM sessions AS s
CROSS JOIN patrol_rules AS rules;

-- One row per worker per Asia/Shanghai day with any track point. total_minutes sums every session,
-- patrols counts only sessions long enough to be patrols. A worker with no track at all that day
-- has no row here: absence is judged against the roster in grid_cells (warehouse/kpi.py
-- patrol_sql(by="squad") counts such a worker as on the roster and not compliant).
CREATE OR REPLACE VIEW patrol_compliance AS
SELECT
    s.worker_id, s.day,
    count(*) AS sessions,
    count(*) FILTER (WHERE s.is_patrol) AS patrols,
    round(sum(s.minutes), 1) AS total_minutes,
    count(*) FILTER (WHERE s.is_patrol) >= any_value(rules.patrols_per_day) AS compliant
FROM patrol_sessions AS s
CROSS JOIN patrol_rules AS rules
GROUP BY s.worker_id, s.day;

-- One row per worker per Asia/Shanghai day with any track point: how much of the patrol stayed in
-- the worker's own cell (the roster in grid_cells). own_cell_share = own_cell_points / points, NULL
-- for an id on no roster (no own cell to cover).
CREATE OR REPLACE VIEW patrol_coverage AS
WITH roster AS (SELECT code AS own_cell, unnest(workers) AS worker_id FROM grid_cells)
SELECT
    t.worker_id, CAST(timezone('Asia/Shanghai', t.recorded_at) AS DATE) AS day, r.own_cell,
    count(*) AS points,
    count(*) FILTER (WHERE t.grid_code = r.own_cell) AS own_cell_points,
    CASE WHEN r.own_cell IS NOT NULL
         THEN round(CAST(count(*) FILTER (WHERE t.grid_code = r.own_cell) AS DOUBLE) / count(*), 4) END
        AS own_cell_share
FROM patrol_tracks AS t
LEFT JOIN roster AS r ON r.worker_id = t.worker_id
GROUP BY t.worker_id, day, r.own_cell;
