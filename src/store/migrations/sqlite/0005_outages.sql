-- Outages wait, they do not kill (SQLite).
-- * `expired`: the job's answer could not be given before its platform's deadline (an upstream was
--   down); not `dead` (nothing was wrong with the job), listed and retried like it.
-- * `waiting_on`: the upstream a queued job is waiting for (its circuit breaker was open); the wait
--   did not count as an attempt. Cleared when the job next finishes an attempt.
-- * `retried_at`: when an operator last retried it (`jobs retry`): deadlines that are ours to choose
--   (a Zendesk note's `zendesk.max_delay`) count from then.
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt (ids kept).

CREATE TABLE jobs_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    kind              TEXT    NOT NULL,
    payload           TEXT    NOT NULL,
    delivery_key      TEXT,
    state             TEXT    NOT NULL
                      CHECK (state IN ('queued', 'running', 'done', 'dead', 'expired')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    run_after         INTEGER NOT NULL,
    lock_owner        TEXT,
    locked_until      INTEGER,
    last_error        TEXT,
    enqueued_at       INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    finished_at       INTEGER,
    payload_purged_at INTEGER,
    request_id        TEXT,
    waiting_on        TEXT,
    retried_at        INTEGER
);

INSERT INTO jobs_new (id, kind, payload, delivery_key, state, attempts, run_after, lock_owner,
                      locked_until, last_error, enqueued_at, updated_at, finished_at,
                      payload_purged_at, request_id)
SELECT id, kind, payload, delivery_key, state, attempts, run_after, lock_owner, locked_until,
       last_error, enqueued_at, updated_at, finished_at, payload_purged_at, request_id
FROM jobs;

DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;

CREATE INDEX jobs_ready ON jobs (run_after, id) WHERE state = 'queued';
CREATE INDEX jobs_leased ON jobs (locked_until) WHERE state = 'running';
CREATE INDEX jobs_state_finished ON jobs (state, finished_at);
CREATE INDEX jobs_waiting ON jobs (waiting_on) WHERE state = 'queued' AND waiting_on IS NOT NULL;
