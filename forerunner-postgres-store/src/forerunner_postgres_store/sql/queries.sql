-- Every statement the postgresql:// store runs, one "-- name:" block each (loaded by
-- forerunner.sqlfiles). Parameters are psycopg's %(name)s placeholders.
--
-- Each Store method is one statement, so each batch is one transaction: connections
-- are in autocommit mode, and PostgreSQL runs a lone statement atomically. Batches
-- travel as arrays, one per column, and unnest() turns them back into rows, so a batch
-- of a hundred jobs is still one round trip and one plan. Arrays are sent in binary
-- (%(name)b): each element goes as its bytes, with no quoting to add or undo.
--
-- Concurrency: every UPDATE re-checks its WHERE clause on the row version it finally
-- locks (READ COMMITTED re-evaluation), so a condition such as state = 'running' AND
-- attempt = report.attempt fences a late writer out even when it waited for the row.
-- The statements that pick jobs for themselves (claim, reclaim, promote, purge) lock
-- with FOR UPDATE SKIP LOCKED: a row another transaction holds is left to it instead
-- of waited for, so two managers never block each other, never take one job twice,
-- and never deadlock on overlapping batches.
--
-- Statistics: a queue table's are always stale. After ANALYZE saw a million finished
-- jobs and no queued one, the planner believes state = 'queued' matches one row, and
-- would answer "these 10 ids, if queued" by walking every queued job in the state
-- index. The statements that look a batch up by id therefore test the state as
-- (state || '') = '...', which no index can serve: they always go by primary key.

-- name: migrations_table_exists
SELECT to_regclass('forerunner_migrations') IS NOT NULL AS present;

-- name: schema_version
SELECT coalesce(max(version), 0) AS version FROM forerunner_migrations;

-- name: lock_migrations
-- Held until the migration transaction ends: managers starting at once migrate one
-- after the other, and each finds the work of the one before it done. The lock is per
-- schema (the caller hashes the schema name into the second key).
SELECT pg_advisory_xact_lock(%(lock_class)s, %(lock_id)s);

-- name: schema_exists
SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = %(schema)s) AS present;

-- name: create_migrations_table
-- The same definition as in schema.sql.
CREATE TABLE IF NOT EXISTS forerunner_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT forerunner_migrations_pkey PRIMARY KEY (version)
);

-- name: record_migration
INSERT INTO forerunner_migrations (version, name) VALUES (%(version)s, %(name)s);

-- name: add_jobs
-- Inserts the batch (the caller already kept only the first job of each key) and
-- returns the rows that were not inserted, each with the stored job holding its key.
-- The final SELECT reads the table as it was when the statement started, so it never
-- sees the rows this statement inserts; stored.id is NULL when the key's holder was
-- committed by another transaction after that moment, and the caller looks it up
-- with a second statement.
WITH batch AS (
    SELECT *
    FROM unnest(
        %(id)b::text[], %(type)b::text[], %(data)b::json[], %(state)b::text[],
        %(priority)b::bigint[], %(attempt)b::integer[], %(max_attempts)b::integer[],
        %(key)b::text[], %(run_at)b::timestamptz[], %(timeout)b::double precision[],
        %(created_at)b::timestamptz[], %(started_at)b::timestamptz[],
        %(finished_at)b::timestamptz[], %(worker)b::text[], %(lease_until)b::timestamptz[],
        %(progress)b::json[], %(result)b::json[], %(error)b::json[]
    ) WITH ORDINALITY AS batch (
        id, type, data, state, priority, attempt, max_attempts, key, run_at, timeout,
        created_at, started_at, finished_at, worker, lease_until, progress, result, error,
        position
    )
),
inserted AS (
    INSERT INTO forerunner_jobs (
        id, type, data, state, priority, attempt, max_attempts, key, run_at, timeout,
        created_at, started_at, finished_at, worker, lease_until, progress, result, error
    )
    SELECT
        id, type, data, state, priority, attempt, max_attempts, key, run_at, timeout,
        created_at, started_at, finished_at, worker, lease_until, progress, result, error
    FROM batch
    ORDER BY position
    ON CONFLICT (key) WHERE key IS NOT NULL DO NOTHING
    RETURNING id
)
SELECT batch.position AS batch_position, stored.*
FROM batch
LEFT JOIN forerunner_jobs AS stored
    ON stored.key = batch.key AND stored.key IS NOT NULL
WHERE batch.id NOT IN (SELECT id FROM inserted);

-- name: jobs_with_keys
SELECT * FROM forerunner_jobs
WHERE key = ANY(%(keys)b::text[]);

-- name: get_job
SELECT * FROM forerunner_jobs WHERE id = %(id)s;

-- name: claim_jobs
-- Only a queued job starts. A row another claim holds is skipped, not waited for: that
-- claim takes it, so of concurrent claims of one id exactly one wins, and claims of
-- overlapping batches in different orders cannot deadlock. FOR UPDATE re-checks the
-- state on the newest row version, and the lock keeps it until the UPDATE.
WITH claimable AS (
    SELECT id FROM forerunner_jobs
    WHERE id = ANY(%(ids)b::text[]) AND (state || '') = 'queued'
    FOR UPDATE SKIP LOCKED
)
UPDATE forerunner_jobs AS job
SET state = 'running',
    attempt = job.attempt + 1,
    worker = %(worker)s,
    started_at = %(now)s,
    lease_until = %(lease_until)s,
    progress = NULL
FROM claimable
WHERE job.id = claimable.id
RETURNING job.*;

-- name: renew_leases
-- Waits for a row another transaction holds (a renewal must not be skipped), then
-- re-checks that the job still runs for this worker.
UPDATE forerunner_jobs
SET lease_until = %(lease_until)s
WHERE id = ANY(%(ids)b::text[]) AND (state || '') = 'running' AND worker = %(worker)s
RETURNING id;

-- name: record_progress
-- Fenced by attempt and, when a worker is given, by the worker holding it.
UPDATE forerunner_jobs
SET progress = %(progress)s::json
WHERE id = %(id)s AND state = 'running' AND attempt = %(attempt)s
  AND (%(worker)s::text IS NULL OR worker = %(worker)s::text);

-- name: finish_jobs
-- Fenced: a report applies only to a job running the report's attempt, for the
-- report's worker when it names one. The caller sends only the reports that could
-- still apply after the earlier ones (forerunner/backends/reports.py), so each job
-- joins at most one report: a report naming no worker that follows reports naming
-- workers (contested) applies only if none of those workers holds the attempt.
-- succeeded: result, no error, finished_at. failed: the report's error, finished_at.
-- queued or scheduled: run_at from the report, its error if it has one, else the
-- job's. Every outcome leaves running, so the lease goes.
WITH report AS (
    SELECT *
    FROM unnest(
        %(job_id)b::text[], %(attempt)b::integer[], %(worker)b::text[],
        %(contested)b::boolean[], %(state)b::text[],
        %(now)b::timestamptz[], %(result)b::json[], %(error)b::json[],
        %(run_at)b::timestamptz[]
    ) AS report (job_id, attempt, worker, contested, state, now, result, error, run_at)
)
UPDATE forerunner_jobs AS job
SET state = report.state,
    result = CASE WHEN report.state = 'succeeded' THEN report.result ELSE job.result END,
    finished_at = CASE
        WHEN report.state IN ('succeeded', 'failed') THEN report.now
        ELSE job.finished_at
    END,
    run_at = CASE
        WHEN report.state IN ('queued', 'scheduled') THEN report.run_at
        ELSE job.run_at
    END,
    error = CASE
        WHEN report.state = 'succeeded' THEN NULL
        WHEN report.state = 'failed' OR report.error IS NOT NULL THEN report.error
        ELSE job.error
    END,
    lease_until = NULL
FROM report
WHERE job.id = report.job_id
  AND (job.state || '') = 'running'
  AND job.attempt = report.attempt
  AND (
    job.worker = report.worker
    OR (report.worker IS NULL AND (NOT report.contested OR NOT EXISTS (
        SELECT 1 FROM report AS named
        WHERE named.job_id = report.job_id
          AND named.attempt = report.attempt
          AND named.worker = job.worker
    )))
  )
RETURNING job.*;

-- name: reclaim_jobs
-- The attempt is lost: retried while attempts are left, failed otherwise. Earliest
-- lease first; rows another manager is reclaiming right now are skipped, so two
-- reapers split the work instead of queueing behind each other. The rows stay locked
-- from the SELECT to the UPDATE, so the UPDATE need not test them again and goes
-- straight to them by primary key.
WITH expired AS (
    SELECT id, lease_until FROM forerunner_jobs
    WHERE state = 'running' AND lease_until < %(now)s
    ORDER BY lease_until, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
reclaimed AS (
    UPDATE forerunner_jobs AS job
    SET state = CASE WHEN job.attempt < job.max_attempts THEN 'queued' ELSE 'failed' END,
        finished_at = CASE
            WHEN job.attempt < job.max_attempts THEN job.finished_at
            ELSE %(now)s
        END,
        lease_until = NULL,
        error = %(error)s::json
    FROM expired
    WHERE job.id = expired.id
    RETURNING job.*, expired.lease_until AS expired_lease
)
SELECT * FROM reclaimed ORDER BY expired_lease, id;

-- name: promote_jobs
WITH due AS (
    SELECT id FROM forerunner_jobs
    WHERE state = 'scheduled' AND run_at <= %(now)s
    ORDER BY run_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
promoted AS (
    UPDATE forerunner_jobs AS job
    SET state = 'queued'
    FROM due
    WHERE job.id = due.id
    RETURNING job.*
)
SELECT * FROM promoted ORDER BY run_at, id;

-- name: cancel_job
UPDATE forerunner_jobs
SET state = 'cancelled', finished_at = %(now)s, lease_until = NULL
WHERE id = %(id)s AND state IN ('scheduled', 'queued', 'running')
RETURNING *;

-- name: retry_job
-- One more attempt is allowed even when the last one used up max_attempts.
UPDATE forerunner_jobs
SET state = 'queued',
    finished_at = NULL,
    result = NULL,
    run_at = NULL,
    max_attempts = greatest(max_attempts, attempt + 1)
WHERE id = %(id)s AND state IN ('failed', 'cancelled')
RETURNING *;

-- name: queued_jobs
-- :after is '' for the first page: every id is longer, hence greater. The state is a
-- range, for the reason the list_* queries give.
SELECT * FROM forerunner_jobs
WHERE state >= 'queued' AND state <= 'queued' AND id > %(after)s
ORDER BY state, id
LIMIT %(limit)s;

-- name: list_jobs
-- The list_* queries run unprepared, so PostgreSQL plans each call with its values:
-- "before IS NULL OR id < before" then folds to one side and the index range applies.
--
-- A filtered listing must not walk the primary key backwards testing each job, which
-- the planner does when statistics say the state or type is common and it no longer
-- is (after ANALYZE saw a million succeeded jobs, state = 'failed' would read them all
-- to find none). So the state is written as a range, x >= s AND x <= s, and the ORDER
-- BY names it before id: with an equality the planner would drop state from the order
-- as constant, and the primary key would give the order too; with a range only the
-- (state, id) and (type, state, id) indexes give it, and a call reads at most limit
-- entries of one index range (per state, for list_jobs_of_type).
SELECT * FROM forerunner_jobs
WHERE (%(before)s::text IS NULL OR id < %(before)s::text)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: list_jobs_in_state
SELECT * FROM forerunner_jobs
WHERE state >= %(state)s AND state <= %(state)s
  AND (%(before)s::text IS NULL OR id < %(before)s::text)
ORDER BY state DESC, id DESC
LIMIT %(limit)s;

-- name: list_jobs_of_type
-- No index orders one type's jobs by id across states; forerunner_jobs_type_state_id
-- orders them within each state. So: the newest of each of the six states, then the
-- newest of those, reading at most six times limit index entries.
SELECT page.*
FROM unnest(
    ARRAY['scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled']
) AS wanted (state)
CROSS JOIN LATERAL (
    SELECT * FROM forerunner_jobs
    WHERE type = %(type)s
      AND state >= wanted.state AND state <= wanted.state
      AND (%(before)s::text IS NULL OR id < %(before)s::text)
    ORDER BY type DESC, state DESC, id DESC
    LIMIT %(limit)s
) AS page
ORDER BY page.id DESC
LIMIT %(limit)s;

-- name: list_jobs_in_state_of_type
SELECT * FROM forerunner_jobs
WHERE type = %(type)s
  AND state >= %(state)s AND state <= %(state)s
  AND (%(before)s::text IS NULL OR id < %(before)s::text)
ORDER BY type DESC, state DESC, id DESC
LIMIT %(limit)s;

-- name: list_jobs_matching
-- A search by part of an id or key: no index helps a substring, so this walks the
-- primary key newest first and stops at limit matches. strpos() is case-sensitive and
-- takes the text literally, where LIKE would treat its wildcard characters as such.
SELECT * FROM forerunner_jobs
WHERE (%(before)s::text IS NULL OR id < %(before)s::text)
  AND (%(state)s::text IS NULL OR state = %(state)s::text)
  AND (%(type)s::text IS NULL OR type = %(type)s::text)
  AND (strpos(id, %(text)s::text) > 0 OR strpos(key, %(text)s::text) > 0)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: count_jobs
SELECT type, state, count(*) AS jobs
FROM forerunner_jobs
GROUP BY type, state;

-- name: purge_jobs
-- Oldest finished first, at most :limit per call, so a large purge runs in bounded
-- batches; rows another purge is deleting are skipped.
WITH doomed AS (
    SELECT id FROM forerunner_jobs
    WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at < %(finished_before)s
    ORDER BY finished_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM forerunner_jobs AS job
USING doomed
WHERE job.id = doomed.id;

-- name: clear_jobs
DELETE FROM forerunner_jobs;
