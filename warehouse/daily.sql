-- The command centre's daily questions, as views over the tables and the views that already define
-- the terms (kpi_case_facts in cases.sql, application_facts in approvals.sql, entity_links in
-- entities.sql), so a daily sheet and `gridhub kpi` cannot disagree. Runs after every other schema
-- file, at every sink start, and is idempotent (views replaced). docs/views.md documents each column.
--
-- Every day is the town's day (Asia/Shanghai, computed with timezone()); every "now" is the moment
-- the view is queried. Every measure is a count (BIGINT), so the rows add up over any set of days,
-- cells, departments or windows. A case is open until it reaches a terminal status of
-- schemas/data/case_flow.yaml (closed, rejected, cancelled); a parked case (挂账) is open.
-- The masked schema gets its copy of each view automatically (warehouse/masking.py): the views hold
-- counts and codes, never a person's name, ID or address.

-- Cases by category and grid cell, per day reported: what kind of problem arises where.
--   reported = open + closed + rejected + cancelled; parked and overdue are among the open.
--   overdue          open, not parked, past its due_at now
--   closed_on_time   closed by its due_at (kpi_case_facts.is_on_time)
CREATE OR REPLACE VIEW daily_cases_by_category_grid AS
SELECT
    CAST(timezone('Asia/Shanghai', c.reported_at) AS DATE) AS day,
    c.category,
    max(c.category_name) AS category_name,
    c.grid_code,
    c.community,
    count(*) AS reported,
    count(*) FILTER (WHERE c.status NOT IN ('closed', 'rejected', 'cancelled')) AS open,
    count(*) FILTER (WHERE c.status = 'parked') AS parked,
    count(*) FILTER (
        WHERE c.status NOT IN ('closed', 'rejected', 'cancelled', 'parked') AND c.due_at < now()
    ) AS overdue,
    count(*) FILTER (WHERE c.status = 'closed') AS closed,
    count(*) FILTER (WHERE f.is_on_time) AS closed_on_time,
    count(*) FILTER (WHERE c.status = 'rejected') AS rejected,
    count(*) FILTER (WHERE c.status = 'cancelled') AS cancelled
FROM cases AS c
LEFT JOIN kpi_case_facts AS f USING (case_id)
GROUP BY day, c.category, c.grid_code, c.community;

-- Open cases by department and age (now - reported_at), in the bands the command centre reads:
-- band_no 1 '< 1 day', 2 '1-3 days', 3 '3-7 days', 4 '> 7 days'. Every department with an open case
-- has all four rows (zeros included), so a sheet of departments by band has no holes; a case not
-- routed to a department counts under department NULL.
--   overdue     open, not parked, past its due_at now
--   escalated   open, not parked, at escalation level 2 (督办) or above
CREATE OR REPLACE VIEW daily_open_cases_by_department_age AS
WITH bands (band_no, age_band) AS (
    VALUES (1, '< 1 day'), (2, '1-3 days'), (3, '3-7 days'), (4, '> 7 days')
),
open_cases AS (
    SELECT
        department, status, reported_at, due_at, escalation_level,
        CASE
            WHEN now() - reported_at < INTERVAL 1 DAY THEN 1
            WHEN now() - reported_at < INTERVAL 3 DAY THEN 2
            WHEN now() - reported_at < INTERVAL 7 DAY THEN 3
            ELSE 4
        END AS band_no
    FROM kpi_case_facts
    WHERE status NOT IN ('closed', 'rejected', 'cancelled')
),
departments AS (SELECT DISTINCT department FROM open_cases)
SELECT
    d.department,
    b.band_no,
    b.age_band,
    count(o.band_no) AS open_cases,
    count(o.band_no) FILTER (WHERE o.status = 'parked') AS parked,
    count(o.band_no) FILTER (WHERE o.status <> 'parked' AND o.due_at < now()) AS overdue,
    count(o.band_no) FILTER (WHERE o.status <> 'parked' AND o.escalation_level >= 2) AS escalated,
    min(o.reported_at) AS oldest_reported_at
FROM departments AS d
CROSS JOIN bands AS b
LEFT JOIN open_cases AS o ON o.department IS NOT DISTINCT FROM d.department AND o.band_no = b.band_no
GROUP BY d.department, b.band_no, b.age_band;

-- Population by community: the golden records of people, each counted once, in the community of
-- the grid cell of the place they live at (entity_links 'lives_at': their address is a known place).
-- community NULL: people whose address matches no place of the grid. Ages are whole years on the
-- town's today; age_unknown: no birth date.
CREATE OR REPLACE VIEW daily_population_by_community AS
WITH homes AS (
    SELECT l.from_key AS person_key, min(g.community) AS community
    FROM entity_links AS l
    JOIN places AS pl ON pl.place_key = l.to_key
    JOIN grid_cells AS g ON g.code = pl.grid_code
    WHERE l.relation = 'lives_at'
    GROUP BY l.from_key
),
population AS (
    SELECT
        h.community, p.gender,
        date_sub('year', p.birth_date, CAST(timezone('Asia/Shanghai', now()) AS DATE)) AS age
    FROM people AS p
    LEFT JOIN homes AS h ON h.person_key = p.person_key
)
SELECT
    community,
    count(*) AS population,
    count(*) FILTER (WHERE gender = 'M') AS male,
    count(*) FILTER (WHERE gender = 'F') AS female,
    count(*) FILTER (WHERE age < 18) AS aged_0_17,
    count(*) FILTER (WHERE age BETWEEN 18 AND 59) AS aged_18_59,
    count(*) FILTER (WHERE age >= 60) AS aged_60_plus,
    count(*) FILTER (WHERE age IS NULL) AS age_unknown
FROM population
GROUP BY community;

-- Enterprises and other organisations by type and registered place. The registers gridhub takes
-- carry no industry code (GB/T 4754), so the type is the one the unified social credit code
-- (GB 32100) carries: its first two characters, registration department and category (91 企业,
-- 92 个体工商户, ...; NULL without a code). The place is both the division of the registering
-- authority (characters 3-8, GB/T 2260) and the community of the grid cell the registered address
-- lies in (entity_links 'registered_at'; NULL when the address is no known place of the grid).
--   with_employees / employees   organisations with a resident working for them (entity_links
--                                'works_for'), and those residents
CREATE OR REPLACE VIEW daily_enterprises_by_type_place AS
WITH kinds (code, label) AS (
    VALUES
        ('11', '机关'), ('12', '事业单位'), ('13', '中央编办直管群众团体'), ('19', '机构编制其他'),
        ('21', '外国常驻新闻机构'), ('29', '外交其他'),
        ('31', '律师执业机构'), ('32', '公证处'), ('33', '基层法律服务所'), ('34', '司法鉴定机构'),
        ('35', '仲裁委员会'), ('39', '司法行政其他'),
        ('41', '外国在华文化中心'), ('49', '文化其他'),
        ('51', '社会团体'), ('52', '民办非企业单位'), ('53', '基金会'), ('59', '民政其他'),
        ('61', '外国旅游部门常驻代表机构'), ('62', '港澳台地区旅游部门常驻代表机构'), ('69', '旅游其他'),
        ('71', '宗教活动场所'), ('72', '宗教院校'), ('79', '宗教其他'),
        ('81', '基层工会'), ('89', '工会其他'),
        ('91', '企业'), ('92', '个体工商户'), ('93', '农民专业合作社'),
        ('A1', '军队事业单位'), ('A9', '军队其他'),
        ('N1', '组级集体经济组织'), ('N2', '村级集体经济组织'), ('N3', '乡镇级集体经济组织'), ('N9', '农业其他'),
        ('Y1', '其他')
),
seats AS (
    SELECT l.from_key AS organisation_key, min(g.community) AS community
    FROM entity_links AS l
    JOIN places AS pl ON pl.place_key = l.to_key
    JOIN grid_cells AS g ON g.code = pl.grid_code
    WHERE l.relation = 'registered_at'
    GROUP BY l.from_key
),
staff AS (
    SELECT to_key AS organisation_key, count(DISTINCT from_key) AS employees
    FROM entity_links
    WHERE relation = 'works_for'
    GROUP BY to_key
)
SELECT
    left(o.uscc, 2) AS type_code,
    max(k.label) AS organisation_type,
    substr(o.uscc, 3, 6) AS registration_division,
    s.community,
    count(*) AS organisations,
    count(st.organisation_key) AS with_employees,
    CAST(coalesce(sum(st.employees), 0) AS BIGINT) AS employees
FROM organisations AS o
LEFT JOIN kinds AS k ON k.code = left(o.uscc, 2)
LEFT JOIN seats AS s ON s.organisation_key = o.organisation_key
LEFT JOIN staff AS st ON st.organisation_key = o.organisation_key
GROUP BY type_code, registration_division, s.community;

-- Applications by approval item and window, per day: what the service centre took in and finished.
-- A window is its number, the department staffing it and the channel (window, online); applications
-- without a window number are told apart by channel, as `gridhub kpi --approvals --by window` does.
--   received, received_online     submitted that day (online: channel 'online')
--   in_progress, overdue_in_progress   of those received that day, unfinished now (and past due_at)
--   finished, finished_on_time    finished that day, whenever submitted (on time: by due_at)
CREATE OR REPLACE VIEW daily_approvals_by_item_window AS
WITH facts AS (
    SELECT
        *,
        CAST(timezone('Asia/Shanghai', submitted_at) AS DATE) AS submitted_day,
        CAST(timezone('Asia/Shanghai', finished_at) AS DATE) AS finished_day
    FROM application_facts
),
happenings AS (
    SELECT
        submitted_day AS day, item_code, item_name, window_no, window_department, window_department_name,
        channel, true AS is_received, NOT finished AS is_in_progress,
        NOT finished AND coalesce(overdue, false) AS is_overdue_in_progress,
        false AS is_finished, false AS is_finished_on_time
    FROM facts
    UNION ALL
    SELECT
        finished_day, item_code, item_name, window_no, window_department, window_department_name,
        channel, false, false, false, true, coalesce(finished_at <= due_at, false)
    FROM facts
    WHERE finished
)
SELECT
    day,
    item_code,
    max(item_name) AS item_name,
    window_no,
    window_department,
    max(window_department_name) AS window_department_name,
    channel,
    count(*) FILTER (WHERE is_received) AS received,
    count(*) FILTER (WHERE is_received AND channel = 'online') AS received_online,
    count(*) FILTER (WHERE is_in_progress) AS in_progress,
    count(*) FILTER (WHERE is_overdue_in_progress) AS overdue_in_progress,
    count(*) FILTER (WHERE is_finished) AS finished,
    count(*) FILTER (WHERE is_finished_on_time) AS finished_on_time
FROM happenings
GROUP BY day, item_code, window_no, window_department, channel;
