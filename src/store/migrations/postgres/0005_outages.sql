-- Outages wait, they do not kill (PostgreSQL).
-- * `expired`: the job's answer could not be given before its platform's deadline (an upstream was
--   down); not `dead` (nothing was wrong with the job), listed and retried like it.
-- * `waiting_on`: the upstream a queued job is waiting for (its circuit breaker was open); the wait
--   did not count as an attempt. Cleared when the job next finishes an attempt.
-- * `retried_at`: when an operator last retried it (`jobs retry`): deadlines that are ours to choose
--   (a Zendesk note's `zendesk.max_delay`) count from then.

ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_state_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('queued', 'running', 'done', 'dead', 'expired'));
ALTER TABLE jobs ADD COLUMN waiting_on TEXT;
ALTER TABLE jobs ADD COLUMN retried_at BIGINT;
CREATE INDEX jobs_waiting ON jobs (waiting_on) WHERE state = 'queued' AND waiting_on IS NOT NULL;
