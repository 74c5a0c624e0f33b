-- Cancelled jobs and erasure tombstones (SQLite).
-- * `cancelled`: an operator ended a waiting job (`replaydesk jobs cancel ID`); the person who asked was
--   told. Listed, retried and scrubbed by retention like an expired job.
-- * `tombstones`: an erased address, kept as the audit trail's keyed hash (never the address) until
--   `expires_at` (`privacy.tombstone_days` after the erasure): a lookup of it is answered "this customer
--   asked to be forgotten", and nothing about it is stored or sent to FullStory.
-- SQLite cannot change a CHECK constraint in place: the jobs table is rebuilt (ids kept).

CREATE TABLE jobs_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    kind              TEXT    NOT NULL,
    payload           TEXT    NOT NULL,
    delivery_key      TEXT,
    state             TEXT    NOT NULL
                      CHECK (state IN ('queued', 'running', 'done', 'dead', 'expired', 'cancelled')),
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
                      payload_purged_at, request_id, waiting_on, retried_at)
SELECT id, kind, payload, delivery_key, state, attempts, run_after, lock_owner, locked_until,
       last_error, enqueued_at, updated_at, finished_at, payload_purged_at, request_id, waiting_on,
       retried_at
FROM jobs;

DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;

CREATE INDEX jobs_ready ON jobs (run_after, id) WHERE state = 'queued';
CREATE INDEX jobs_leased ON jobs (locked_until) WHERE state = 'running';
CREATE INDEX jobs_state_finished ON jobs (state, finished_at);
CREATE INDEX jobs_waiting ON jobs (waiting_on) WHERE state = 'queued' AND waiting_on IS NOT NULL;

CREATE TABLE tombstones (
    hash       TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
