-- The statements of the sqlite:// store, by name (loaded by forerunner.sqlfiles).
--
-- Batches of ids, keys and reports reach SQL through two per-connection temporary
-- tables, filled with executemany, rather than through json_each(?): SQLite's JSON
-- functions cut strings at an escaped NUL, and a job id, key or error message may
-- hold one. Binding is exact for every value, and the statement that uses the batch
-- is still one statement per batch. Every mutating method runs inside
-- BEGIN IMMEDIATE ... COMMIT, so a batch is one transaction and its temporary rows
-- are private to it.
--
-- Times are bound as integer microseconds since the epoch, UTC (see schema.sql).

-- name: configure_connection
-- Run with executescript on every new connection. NORMAL synchronisation is safe in
-- WAL mode: a crash of the process loses nothing committed, only a power loss may
-- lose the last transactions.
PRAGMA synchronous = NORMAL;
PRAGMA temp_store = MEMORY;
CREATE TEMP TABLE IF NOT EXISTS forerunner_batch (
    position INTEGER PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TEMP TABLE IF NOT EXISTS forerunner_reports (
    position INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    worker TEXT,
    contested INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    now INTEGER NOT NULL,
    result TEXT,
    error_type TEXT,
    error_message TEXT,
    error_traceback TEXT,
    run_at INTEGER
);
-- Statistics that say the batch tables are small. Without them SQLite guesses a million
-- rows, and once the jobs table has statistics (ANALYZE, PRAGMA optimize) it plans
-- finish_jobs with a Bloom filter built over the whole jobs table on every batch: 20 ms
-- per finish at 200,000 jobs instead of 0.05. The rows exist only for ANALYZE.
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 64)
INSERT INTO temp.forerunner_batch (value) SELECT i FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 64)
INSERT INTO temp.forerunner_reports (job_id, attempt, state, now) SELECT i, 1, 'succeeded', 0 FROM n;
ANALYZE temp;
DELETE FROM temp.forerunner_batch;
DELETE FROM temp.forerunner_reports;

-- name: enable_wal
-- Persistent in the file: readers never block the writer, nor the writer readers.
PRAGMA journal_mode = WAL;

-- name: journal_mode
PRAGMA journal_mode;

-- name: schema_version
SELECT max(version) AS version FROM forerunner_schema_version;

-- name: clear_batch
DELETE FROM temp.forerunner_batch;

-- name: fill_batch
INSERT INTO temp.forerunner_batch (value) VALUES (?);

-- name: clear_reports
DELETE FROM temp.forerunner_reports;

-- name: fill_reports
INSERT INTO temp.forerunner_reports (
    job_id, attempt, worker, contested, state, now, result,
    error_type, error_message, error_traceback, run_at
) VALUES (
    :job_id, :attempt, :worker, :contested, :state, :now, :result,
    :error_type, :error_message, :error_traceback, :run_at
);

-- name: jobs_with_keys
-- The stored jobs whose key is in the batch.
SELECT * FROM forerunner_jobs
WHERE key IN (SELECT value FROM temp.forerunner_batch);

-- name: insert_job
INSERT INTO forerunner_jobs (
    id, type, data, state, priority, attempt, max_attempts, key, run_at, timeout,
    created_at, started_at, finished_at, worker, lease_until, progress, result,
    error_type, error_message, error_traceback
) VALUES (
    :id, :type, :data, :state, :priority, :attempt, :max_attempts, :key, :run_at, :timeout,
    :created_at, :started_at, :finished_at, :worker, :lease_until, :progress, :result,
    :error_type, :error_message, :error_traceback
);

-- name: stored_ids
-- Which ids of the batch are stored: names the culprit when an insert hits one.
SELECT id FROM forerunner_jobs
WHERE id IN (SELECT value FROM temp.forerunner_batch);

-- name: get_job
SELECT * FROM forerunner_jobs WHERE id = :id;

-- name: claim_jobs
-- Only a queued job starts, so of two transactions claiming one id the second finds it
-- running and skips it: exactly one wins.
UPDATE forerunner_jobs
SET state = 'running',
    attempt = attempt + 1,
    worker = :worker,
    started_at = :now,
    lease_until = :lease_until,
    progress = NULL
WHERE state = 'queued'
  AND id IN (SELECT value FROM temp.forerunner_batch)
RETURNING *;

-- name: renew_leases
UPDATE forerunner_jobs
SET lease_until = :lease_until
WHERE state = 'running'
  AND worker = :worker
  AND id IN (SELECT value FROM temp.forerunner_batch)
RETURNING id;

-- name: record_progress
-- Fenced by attempt and, when :worker is given, by the worker holding it.
UPDATE forerunner_jobs
SET progress = :progress
WHERE id = :id AND state = 'running' AND attempt = :attempt
  AND (:worker IS NULL OR worker = :worker);

-- name: finish_jobs
-- Fenced: a report applies only to a job running the report's attempt, for the
-- report's worker when it names one. The caller sends only the reports that could
-- still apply after the earlier ones (forerunner/backends/reports.py), so each job
-- joins at most one report: a report naming no worker that follows reports naming
-- workers (contested) applies only if none of those workers holds the attempt. The
-- unary + keeps the planner off the state index: it must look each report's job up by
-- id rather than scan every running job.
-- succeeded: result, no error, finished_at. failed: the report's error, finished_at.
-- queued or scheduled: run_at from the report, its error if it has one, else the
-- job's. Every outcome leaves running, so the lease goes.
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
    error_type = CASE
        WHEN report.state = 'succeeded' THEN NULL
        WHEN report.state = 'failed' OR report.error_type IS NOT NULL THEN report.error_type
        ELSE job.error_type
    END,
    error_message = CASE
        WHEN report.state = 'succeeded' THEN NULL
        WHEN report.state = 'failed' OR report.error_type IS NOT NULL THEN report.error_message
        ELSE job.error_message
    END,
    error_traceback = CASE
        WHEN report.state = 'succeeded' THEN NULL
        WHEN report.state = 'failed' OR report.error_type IS NOT NULL
            THEN report.error_traceback
        ELSE job.error_traceback
    END,
    lease_until = NULL
FROM temp.forerunner_reports AS report
WHERE job.id = report.job_id
  AND +job.state = 'running'
  AND +job.attempt = report.attempt
  AND (
    +job.worker = report.worker
    OR (report.worker IS NULL AND (NOT report.contested OR NOT EXISTS (
        SELECT 1 FROM temp.forerunner_reports AS named
        WHERE named.job_id = report.job_id
          AND named.attempt = report.attempt
          AND named.worker = job.worker
    )))
  )
RETURNING *;

-- name: expired_leases
-- The ids reclaim_jobs takes, in the order reclaim_expired returns them. INDEXED BY:
-- the planner would rather look state up in forerunner_jobs_state_id and sort.
SELECT id FROM forerunner_jobs INDEXED BY forerunner_jobs_running_lease
WHERE state = 'running' AND lease_until < :now
ORDER BY lease_until, id
LIMIT :limit;

-- name: reclaim_jobs
-- The attempt is lost: retried while attempts are left, failed otherwise.
UPDATE forerunner_jobs
SET state = CASE WHEN attempt < max_attempts THEN 'queued' ELSE 'failed' END,
    finished_at = CASE WHEN attempt < max_attempts THEN finished_at ELSE :now END,
    lease_until = NULL,
    error_type = :error_type,
    error_message = :error_message,
    error_traceback = :error_traceback
WHERE id IN (
    SELECT id FROM forerunner_jobs
    WHERE state = 'running' AND lease_until < :now
    ORDER BY lease_until, id
    LIMIT :limit
)
RETURNING *;

-- name: promote_jobs
UPDATE forerunner_jobs
SET state = 'queued'
WHERE id IN (
    SELECT id FROM forerunner_jobs INDEXED BY forerunner_jobs_scheduled_run_at
    WHERE state = 'scheduled' AND run_at <= :now
    ORDER BY run_at, id
    LIMIT :limit
)
RETURNING *;

-- name: cancel_job
UPDATE forerunner_jobs
SET state = 'cancelled', finished_at = :now, lease_until = NULL
WHERE id = :id AND state IN ('scheduled', 'queued', 'running')
RETURNING *;

-- name: retry_job
-- One more attempt is allowed even when the last one used up max_attempts.
UPDATE forerunner_jobs
SET state = 'queued',
    finished_at = NULL,
    result = NULL,
    run_at = NULL,
    max_attempts = max(max_attempts, attempt + 1)
WHERE id = :id AND state IN ('failed', 'cancelled')
RETURNING *;

-- name: queued_jobs
-- :after is '' for the first page: every id is longer, hence greater.
SELECT * FROM forerunner_jobs
WHERE state = 'queued' AND id > :after
ORDER BY id
LIMIT :limit;

-- name: list_jobs
-- In the list_* queries :before is X'' for the first page: SQLite orders every TEXT
-- value before every BLOB, so every id is less than it and the index range still
-- applies.
SELECT * FROM forerunner_jobs
WHERE id < :before
ORDER BY id DESC
LIMIT :limit;

-- name: list_jobs_in_state
SELECT * FROM forerunner_jobs
WHERE state = :state AND id < :before
ORDER BY id DESC
LIMIT :limit;

-- name: list_jobs_of_type
SELECT * FROM forerunner_jobs
WHERE type = :type AND id < :before
ORDER BY id DESC
LIMIT :limit;

-- name: list_jobs_in_state_of_type
SELECT * FROM forerunner_jobs
WHERE state = :state AND type = :type AND id < :before
ORDER BY id DESC
LIMIT :limit;

-- name: list_jobs_matching
-- A search by part of an id or key: no index helps a substring, so this walks ids
-- newest first and stops at :limit matches. instr() compares bytes, case-sensitively,
-- where LIKE would fold ASCII case and treat % and _ in the text as wildcards.
SELECT * FROM forerunner_jobs
WHERE id < :before
  AND (:state IS NULL OR state = :state)
  AND (:type IS NULL OR type = :type)
  AND (instr(id, :text) > 0 OR instr(key, :text) > 0)
ORDER BY id DESC
LIMIT :limit;

-- name: count_jobs
SELECT type, state, count(*) AS jobs
FROM forerunner_jobs
GROUP BY type, state;

-- name: purge_jobs
-- INDEXED BY makes SQLite walk the partial index oldest first and stop at :limit (or
-- fail loudly if the index stopped matching), instead of sorting every terminal job.
DELETE FROM forerunner_jobs
WHERE id IN (
    SELECT id FROM forerunner_jobs INDEXED BY forerunner_jobs_finished
    WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at < :finished_before
    ORDER BY finished_at, id
    LIMIT :limit
);

-- name: clear_jobs
DELETE FROM forerunner_jobs;
