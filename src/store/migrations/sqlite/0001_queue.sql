-- Job queue, delivery keys and the effect ledger (SQLite).
-- Times are i64 unix milliseconds; payloads are JSON text.

CREATE TABLE jobs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    kind              TEXT    NOT NULL,
    payload           TEXT    NOT NULL,
    delivery_key      TEXT,
    state             TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    run_after         INTEGER NOT NULL,
    lock_owner        TEXT,
    locked_until      INTEGER,
    last_error        TEXT,
    enqueued_at       INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    finished_at       INTEGER,
    payload_purged_at INTEGER
);

-- What a worker may claim: queued and due, or running with a lapsed lease.
CREATE INDEX jobs_ready ON jobs (run_after, id) WHERE state = 'queued';
CREATE INDEX jobs_leased ON jobs (locked_until) WHERE state = 'running';
-- Listing by state and retention.
CREATE INDEX jobs_state_finished ON jobs (state, finished_at);

-- One row per accepted webhook delivery; kept after the job's payload is
-- purged so that late retries of the same delivery are still refused.
CREATE TABLE deliveries (
    delivery_key TEXT    PRIMARY KEY,
    job_id       INTEGER NOT NULL,
    received_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Effect ledger: intent before an external effect, external id after it.
CREATE TABLE effects (
    job_id      INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    marker      TEXT    NOT NULL,
    external_id TEXT,
    state       TEXT    NOT NULL CHECK (state IN ('intent', 'done')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (job_id, name)
) WITHOUT ROWID;
