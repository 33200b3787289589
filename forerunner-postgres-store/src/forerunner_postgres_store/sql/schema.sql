-- The schema of the postgresql:// store as the migrations leave it, in one file to read.
--
-- The store never runs this file: it applies sql/migrations/NNNN_*.sql in order and
-- records each in forerunner_migrations. tests/test_migrations.py applies both this
-- file and the migrations to fresh schemas and compares the catalogs, so a migration
-- that is not reflected here (or the other way round) fails the tests.
--
-- Every name is unqualified: the store sets search_path to the URL's schema (default
-- public), so several deployments or test runs can share one database. Tables are
-- prefixed forerunner_ so that the store can share a schema with an application.
--
-- Encodings, chosen so that every value round-trips exactly:
--   id, type, key, state   text COLLATE "C": byte order of UTF-8 is code point order,
--                          the order Python sorts ids in; comparisons skip locale rules
--   times                  timestamptz: microseconds, an instant, compared as instants
--   data, progress,        json, not jsonb: json keeps the text as written, so strings
--   result, error          holding \u0000, -0.0, 1e308 and integers beyond 64 bits come
--                          back exactly; jsonb rejects the first and rewrites the others.
--                          NULL is None. error is {"type", "message", "traceback"}, JSON
--                          because a message may hold NUL, which text cannot.

-- One row per migration applied; the store compares max(version) with the newest
-- migration it ships.
CREATE TABLE forerunner_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT forerunner_migrations_pkey PRIMARY KEY (version)
);

CREATE TABLE forerunner_jobs (
    id text COLLATE "C" NOT NULL,
    type text COLLATE "C" NOT NULL,
    data json,
    state text COLLATE "C" NOT NULL,
    priority bigint NOT NULL,
    attempt integer NOT NULL,
    max_attempts integer NOT NULL,
    key text COLLATE "C",
    run_at timestamptz,
    timeout double precision,
    created_at timestamptz,
    started_at timestamptz,
    finished_at timestamptz,
    worker text,
    lease_until timestamptz,
    progress json,
    result json,
    error json,
    -- get, claim, renew, progress, finish, cancel, retry; list() without filters
    -- walks it backwards.
    CONSTRAINT forerunner_jobs_pkey PRIMARY KEY (id),
    CONSTRAINT forerunner_jobs_state_check CHECK (
        state IN ('scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled')
    ),
    CONSTRAINT forerunner_jobs_attempt_check CHECK (attempt >= 0),
    CONSTRAINT forerunner_jobs_max_attempts_check CHECK (max_attempts >= 1)
);

-- add: at most one job per idempotency key (ON CONFLICT infers this index); jobs
-- without a key are not indexed.
CREATE UNIQUE INDEX forerunner_jobs_key
    ON forerunner_jobs (key) WHERE key IS NOT NULL;

-- queued(after) pages the queued jobs by id; list(state, before) pages any state.
CREATE INDEX forerunner_jobs_state_id
    ON forerunner_jobs (state, id);

-- counts() reads only this index; list(type, state) walks one range of it and
-- list(type) merges its six state ranges.
CREATE INDEX forerunner_jobs_type_state_id
    ON forerunner_jobs (type, state, id);

-- reclaim_expired: running jobs, earliest lease first.
CREATE INDEX forerunner_jobs_running_lease
    ON forerunner_jobs (lease_until, id) WHERE state = 'running';

-- promote_due: scheduled jobs, earliest run_at first.
CREATE INDEX forerunner_jobs_scheduled_run_at
    ON forerunner_jobs (run_at, id) WHERE state = 'scheduled';

-- purge: terminal jobs, oldest finished first.
CREATE INDEX forerunner_jobs_finished
    ON forerunner_jobs (finished_at, id) WHERE state IN ('succeeded', 'failed', 'cancelled');
