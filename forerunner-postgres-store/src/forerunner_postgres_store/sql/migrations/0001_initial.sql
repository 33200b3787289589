-- 0001_initial: the jobs table and one index per query the manager runs.
--
-- Runs inside the migration transaction, with search_path set to the store's schema,
-- so every name below lands in that schema. docs/postgres-store.md explains each
-- choice; schema.sql must describe the same result (tests/test_migrations.py).

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
    CONSTRAINT forerunner_jobs_pkey PRIMARY KEY (id),
    CONSTRAINT forerunner_jobs_state_check CHECK (
        state IN ('scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled')
    ),
    CONSTRAINT forerunner_jobs_attempt_check CHECK (attempt >= 0),
    CONSTRAINT forerunner_jobs_max_attempts_check CHECK (max_attempts >= 1)
);

CREATE UNIQUE INDEX forerunner_jobs_key
    ON forerunner_jobs (key) WHERE key IS NOT NULL;

CREATE INDEX forerunner_jobs_state_id
    ON forerunner_jobs (state, id);

CREATE INDEX forerunner_jobs_type_state_id
    ON forerunner_jobs (type, state, id);

CREATE INDEX forerunner_jobs_running_lease
    ON forerunner_jobs (lease_until, id) WHERE state = 'running';

CREATE INDEX forerunner_jobs_scheduled_run_at
    ON forerunner_jobs (run_at, id) WHERE state = 'scheduled';

CREATE INDEX forerunner_jobs_finished
    ON forerunner_jobs (finished_at, id) WHERE state IN ('succeeded', 'failed', 'cancelled');
