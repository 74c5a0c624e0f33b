-- Cancelled jobs and erasure tombstones (PostgreSQL).
-- * `cancelled`: an operator ended a waiting job (`replaydesk jobs cancel ID`); the person who asked was
--   told. Listed, retried and scrubbed by retention like an expired job.
-- * `tombstones`: an erased address, kept as the audit trail's keyed hash (never the address) until
--   `expires_at` (`privacy.tombstone_days` after the erasure): a lookup of it is answered "this customer
--   asked to be forgotten", and nothing about it is stored or sent to FullStory.

ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_state_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('queued', 'running', 'done', 'dead', 'expired', 'cancelled'));

CREATE TABLE tombstones (
    hash       TEXT   PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
