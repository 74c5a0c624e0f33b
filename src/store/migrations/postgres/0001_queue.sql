-- Job queue, delivery keys and the effect ledger (PostgreSQL).
-- Times are BIGINT unix milliseconds; payloads are JSON text, exactly as in
-- the SQLite schema, so both backends share their query text.

CREATE TABLE jobs (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind              TEXT   NOT NULL,
    payload           TEXT   NOT NULL,
    delivery_key      TEXT,
    state             TEXT   NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')),
    attempts          BIGINT NOT NULL DEFAULT 0,
    run_after         BIGINT NOT NULL,
    lock_owner        TEXT,
    locked_until      BIGINT,
    last_error        TEXT,
    enqueued_at       BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    finished_at       BIGINT,
    payload_purged_at BIGINT
);

-- What a worker may claim: queued and due, or running with a lapsed lease.
CREATE INDEX jobs_ready ON jobs (run_after, id) WHERE state = 'queued';
CREATE INDEX jobs_leased ON jobs (locked_until) WHERE state = 'running';
-- Listing by state and retention.
CREATE INDEX jobs_state_finished ON jobs (state, finished_at);

-- One row per accepted webhook delivery; kept after the job's payload is
-- purged so that late retries of the same delivery are still refused.
CREATE TABLE deliveries (
    delivery_key TEXT   PRIMARY KEY,
    job_id       BIGINT NOT NULL,
    received_at  BIGINT NOT NULL
);

-- Effect ledger: intent before an external effect, external id after it.
CREATE TABLE effects (
    job_id      BIGINT NOT NULL,
    name        TEXT   NOT NULL,
    marker      TEXT   NOT NULL,
    external_id TEXT,
    state       TEXT   NOT NULL CHECK (state IN ('intent', 'done')),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (job_id, name)
);
